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
