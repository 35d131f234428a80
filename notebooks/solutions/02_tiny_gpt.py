"""Solutions: notebook 02, self-checking exercises (helpers.course.exercises)."""


def exercise_1():
    def my_n_params(n_layer, n_embd, vocab_size, block_size):
        C = n_embd
        embeddings = vocab_size * C + block_size * C  # tokens + positions (the LM head is tied: no extra)
        attention = (C * 3 * C + 3 * C) + (C * C + C)  # q, k, v in one Linear with bias; output projection
        mlp = (C * 4 * C + 4 * C) + (4 * C * C + C)  # up to 4C and back, with biases
        norms = 2 * (2 * C)  # two LayerNorms per block, weight + bias
        return embeddings + n_layer * (attention + mlp + norms) + 2 * C  # + the final LayerNorm

    return my_n_params


def exercise_2():
    import torch

    def my_causal_mask(T):
        return torch.tril(torch.ones(T, T, dtype=torch.bool))  # row i (query) sees columns 0..i

    return my_causal_mask


def exercise_3():
    from helpers.measure.flops import param_counts
    from helpers.scratch.gpt import GPT, GPTConfig

    model = GPT(GPTConfig.preset("gpt-micro", vocab_size=1024))
    return 2 * param_counts(model).matmul  # a multiply and an add per matmul weight per token


# ----------------------------------------------------------------------------- open exercises
# Each `open_exercise_N` runs the experiment of the notebook's exercise N (sizes are arguments, so a test can
# run it small); its docstring gives the answer. tests/test_solutions_open.py checks them.


def open_exercise_1(config):
    """(parameters, training FLOPs per token at block_size) for config.n_head and twice that, same n_embd.

    Answer: nothing changes. n_head only splits the C channels of q, k and v into n_head slices of
    C / n_head; the weight matrices (C x 3C and C x C) and the MLP keep their shapes, so the parameter
    count V·C + T·C + L·(12C² + 13C) + 2C and the 6·N + 12·L·C·T FLOPs have no n_head in them. What does
    change: more, smaller heads (each head's dot products are shorter), and a (B, n_head, T, T) attention
    matrix twice as big in memory.
    """
    from dataclasses import replace

    from helpers.measure.flops import param_counts, training_flops_per_token
    from helpers.scratch.gpt import GPT

    out = {}
    for n_head in (config.n_head, 2 * config.n_head):
        model = GPT(replace(config, n_head=n_head))
        out[n_head] = (param_counts(model).total,
                       training_flops_per_token(model, seq_len=config.block_size).per_token)
    return out


def open_exercise_2(config):
    """Untie the LM head -> (parameters added, their share of the untied model).

    Answer: V·C parameters (the head is a C -> V Linear without bias, like the tied one): for the ci
    profile's tiny GPT (V=1024, C=64) that is 65,536 more on 169,728, ~28 % of the untied model, because at
    this size the vocabulary dominates. For GPT-2 small (V=50,257, C=768) it would be 38.6 M, ~24 %. Tying
    saves memory and, for small models, works as well (Press & Wolf 2017); the matmul FLOPs are the same
    either way (the head multiplies in both cases).
    """
    from torch import nn

    from helpers.measure.flops import param_counts
    from helpers.scratch.gpt import GPT

    model = GPT(config)
    tied = param_counts(model).total
    model.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)  # its own weight now
    untied = param_counts(model).total
    return untied - tied, (untied - tied) / untied


def open_exercise_3(n_matmul, n_layer, n_embd):
    """The context length T at which attention's 12·L·C·T equals the weights' 6·N: T = N / (2·L·C).

    Answer: for the ci profile's tiny GPT (N = 163,840 matmul weights, L=2, C=64) T = 640, ten times its
    context of 64: attention is a small share of its FLOPs. For GPT-2 small (N≈124 M, L=12, C=768)
    T ≈ 6,700, six times its 1,024 context. Attention's share grows with T, so long contexts are where it
    starts to dominate (and where FlashAttention and the KV cache matter most).
    """
    return n_matmul / (2 * n_layer * n_embd)


def generate_top_k(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
    """The notebook's `generate_naive` with top_k: keep the k largest logits, set the rest to -inf."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[:, -1, :] / temperature  # (B, V)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1): k-th largest
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = F.softmax(logits, dim=-1)
            next_id = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)
    return idx


def open_exercise_4(model, prompt, max_new_tokens=20):
    """(top_k=1 tokens, greedy tokens of model.generate(..., temperature=0)): they are equal.

    Answer: with k=1 only the largest logit survives, its probability is 1, and sampling always picks it:
    that is greedy decoding, whatever the temperature or the random generator.
    """
    import torch

    sampled = generate_top_k(model.eval(), prompt, max_new_tokens, top_k=1,
                             generator=torch.Generator().manual_seed(123))
    greedy = model.generate(prompt, max_new_tokens, temperature=0)
    return sampled, greedy
