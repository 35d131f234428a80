"""Every FLOP and parameter count in the course: one definition of N each, one formula, one source.

Parameter counts (`param_counts(model) -> ParamCounts`), each with a name, because "N" means different
things in different papers:
- total: every parameter tensor once (a tied LM head shares the token embedding, so it adds nothing).
- embedding: the nn.Embedding tables (token and position). A lookup copies a row: no FLOPs.
- non_embedding: total - embedding. Kaplan et al. 2020 fit their scaling laws to this N.
- matmul: the weight of every nn.Linear, once per module. This is the N that costs FLOPs: a tied LM
  head counts again here, because it multiplies every output vector by the embedding table. Biases and
  norms are left out (element-wise work, about 1/C of the matmul work).
- trainable / trainable_matmul: the same, only for parameters with requires_grad (LoRA's A and B).

FLOPs per token (2 FLOPs = one multiply-add):
- forward: 2·N_matmul (each weight does one multiply-add per token) + attention 4·L·d·T.
- training: forward 2·N, gradients w.r.t. activations 2·N (the backward pass goes through every layer,
  frozen or not, to reach the earliest trainable one), gradients w.r.t. weights 2·N_trainable (only
  weights that train need them). All weights training: 6·N (Kaplan et al. 2020, section 2.1).
  LoRA: 4·N + 2·N_lora, about two thirds of full training, not 1 %: what LoRA saves is the memory of
  the optimiser state, not the passes through the frozen weights (Hu et al. 2021).
- attention scores: q·kᵀ and scores·v each cost 2·T·d per token per layer over T positions, so 4·L·d·T
  forward and 12·L·d·T with the backward pass (PaLM, Chowdhery et al. 2022, appendix B). T is the
  length of the sequences trained on; we count the full T×T matrix as torch's FLOP counter does, not
  the half that the causal mask keeps. Without a seq_len the term is left out, and the method says so.
- for a number of tokens: `full_training_flops` 6·N·D, `lora_training_flops`, `inference_flops` 2·N·D;
  `inherited_pretraining_flops(spec)`: 6 × the model card's parameters × its pretraining tokens.
- without a model: `gpt_param_counts(n_layer, n_embd, vocab_size, block_size)` gives the counts of our
  tiny GPT from its sizes, and `count_training_flops(counts, attention)` the FLOPs (for run-time budgets).

Left out on purpose: biases, norms, activations, softmax and the loss (element-wise, no matmuls); the
optimiser step (a few FLOPs per trainable weight per *step*, not per token); modules used twice in one
forward (weight sharing across layers: each nn.Linear is counted once); transformers' Conv1D (GPT-2 on
the hub; our export is only ever loaded back, never trained); the first layer's input gradient, which
autograd skips when the input (an embedding output) needs no gradient: a measured count is lower by
2·(first layer's matmul weights) per token, well under 1 % for models of a few layers or more.

References: Kaplan et al. 2020 (arXiv:2001.08361) for 6·N·D and N non-embedding; Hoffmann et al. 2022
(Chinchilla, arXiv:2203.15556) for D ≈ 20·N; Chowdhery et al. 2022 (PaLM, arXiv:2204.02311, appendix B)
for the attention term; Hu et al. 2021 (LoRA, arXiv:2106.09685).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch.nn as nn

from helpers.core.checks import count, instance, number, text

CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann et al. 2022: compute-optimal D ≈ 20·N


@dataclass(frozen=True)
class ParamCounts:
    """Named parameter counts of one model (see the module docstring for each definition)."""

    total: int  # every parameter tensor once; a tied LM head adds nothing
    embedding: int  # nn.Embedding tables (token, position): lookups, no FLOPs
    non_embedding: int  # total - embedding: Kaplan et al.'s N
    matmul: int  # every nn.Linear weight, once per module (a tied LM head counts again): what costs FLOPs
    trainable: int  # parameters with requires_grad
    trainable_matmul: int  # matmul weights with requires_grad (LoRA: the adapters' A and B)


@dataclass(frozen=True)
class FlopCount:
    """FLOPs per token and how they were counted, in words (what a RunRecord's flops_method carries)."""

    per_token: float
    method: str

    def __post_init__(self) -> None:
        number("FlopCount.per_token", self.per_token, 0, fix="FLOPs per token, e.g. 6 * N")
        text("FlopCount.method", self.method, "say how the FLOPs were counted, e.g. '6N, N = matmul weights'")

    def times(self, tokens: float) -> float:
        """FLOPs for `tokens` tokens: FlopCount(6.0, '6N').times(10) -> 60.0."""
        _check_count("tokens", tokens, allow_zero=True)
        return self.per_token * tokens


@dataclass(frozen=True)
class Attention:
    """What the attention-score FLOPs depend on: layers, attention width (heads × head size), positions."""

    n_layer: int
    width: int  # n_head * head_size; for grouped-query attention the *query* heads (keys are repeated)
    seq_len: int  # T: the length of the sequences processed (the full T×T score matrix is counted)

    def __post_init__(self) -> None:
        for name in ("n_layer", "width", "seq_len"):
            count(f"Attention.{name}", getattr(self, name), 1)

    def forward_per_token(self) -> float:
        """4·L·d·T: q·kᵀ and scores·v, 2·T·d FLOPs each, per layer."""
        return 4.0 * self.n_layer * self.width * self.seq_len


def _check_count(name: str, value: float, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > 0 or (allow_zero and value == 0))
    if not ok:
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")


def _check_model(model) -> None:
    instance("model", model, nn.Module, "pass the torch model itself (for a LoadedModel: loaded.model)")


# ---------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------
def matmul_params(model: nn.Module, trainable: bool | None = None) -> int:
    """Weights of every nn.Linear in `model`, once per module (so a tied LM head counts once more, as it
    multiplies once more). trainable=True/False: only weights that do / do not need a gradient."""
    _check_model(model)
    if trainable is not None and not isinstance(trainable, bool):
        raise ValueError(f"trainable must be True, False or None (all weights), got {trainable!r}")
    total = 0
    for module in model.modules():
        if isinstance(module, nn.Linear) and (trainable is None or module.weight.requires_grad == trainable):
            total += module.weight.numel()
    return total


def param_counts(model: nn.Module) -> ParamCounts:
    """Every named count of `model`. For GPT(GPTConfig(vocab_size=1024, block_size=64, n_layer=2,
    n_head=2, n_embd=64)): total 169,728, embedding 69,632, non_embedding 100,096, matmul 163,840."""
    _check_model(model)
    params = list(model.parameters())  # shared tensors appear once
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    total = sum(p.numel() for p in params)
    embedding = sum(p.numel() for p in params if id(p) in embedding_ids)
    return ParamCounts(
        total=total,
        embedding=embedding,
        non_embedding=total - embedding,
        matmul=matmul_params(model),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        trainable_matmul=matmul_params(model, trainable=True),
    )


def gpt_param_counts(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> ParamCounts:
    """Counts of helpers.scratch.gpt.GPT from its sizes, without building it (all weights trainable).
    Per block: attention q, k, v, proj 4·C² + 4·C biases; MLP 8·C² + 5·C biases; two LayerNorms 4·C.
    Tied LM head: no parameters of its own, V·C more matmul weights."""
    for name, value in (("n_layer", n_layer), ("n_embd", n_embd), ("vocab_size", vocab_size),
                        ("block_size", block_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    C, L = n_embd, n_layer
    embedding = vocab_size * C + block_size * C  # token + position tables
    non_embedding = L * (12 * C * C + 13 * C) + 2 * C  # blocks + the final LayerNorm
    matmul = 12 * L * C * C + vocab_size * C  # blocks' Linear weights + the tied head
    total = embedding + non_embedding
    return ParamCounts(total, embedding, non_embedding, matmul, total, matmul)


def attention_of(model: nn.Module, seq_len: int) -> Attention:
    """The Attention sizes of our GPT (config n_layer, n_embd) or a transformers model (config
    num_hidden_layers, num_attention_heads, head_dim or hidden_size), at sequence length `seq_len`."""
    _check_model(model)
    count("seq_len", seq_len, 1, "the length of the sequences trained on, or None to leave attention out")
    config = getattr(model, "config", None)
    layers = getattr(config, "n_layer", None) or getattr(config, "num_hidden_layers", None)
    hidden = getattr(config, "n_embd", None) or getattr(config, "hidden_size", None)
    heads = getattr(config, "n_head", None) or getattr(config, "num_attention_heads", None)
    if not (layers and hidden and heads):
        raise ValueError(
            f"cannot read the attention sizes of {type(model).__name__} (no config with n_layer/n_embd/n_head "
            "or num_hidden_layers/hidden_size/num_attention_heads): pass seq_len=None to leave attention out"
        )
    head_dim = getattr(config, "head_dim", None)
    width = heads * head_dim if isinstance(head_dim, int) else hidden
    return Attention(int(layers), int(width), int(seq_len))


# ---------------------------------------------------------------------------------------------
# FLOPs per token
# ---------------------------------------------------------------------------------------------
def _matmul_training(n_matmul: float, n_trainable: float) -> float:
    """The one training formula: forward 2N + activation gradients 2N + weight gradients 2N_trainable."""
    return 4.0 * n_matmul + 2.0 * n_trainable


def _attention_words(attention: Attention | None, factor: int) -> str:
    if attention is None:
        return "; attention scores not counted (no seq_len given)"
    a = attention
    return (f" + {factor}*L*d*T attention scores, L = {a.n_layer} layers, d = {a.width}, T = {a.seq_len} "
            "(full T x T matrix; PaLM appendix B)")


def _check_counts(counts: ParamCounts, attention: Attention | None) -> None:
    instance("counts", counts, ParamCounts, "from param_counts(model) or gpt_param_counts(...)")
    if attention is not None:
        instance("attention", attention, Attention, "from attention_of(model, seq_len), or None")


def count_training_flops(counts: ParamCounts, attention: Attention | None = None) -> FlopCount:
    """Training FLOPs per token from counts (no model needed): 4·N + 2·N_trainable (+ 12·L·d·T).
    gpt_param_counts(2, 64, 1024, 64) with Attention(2, 64, 64) -> 6·163,840 + 98,304 = 1,081,344."""
    _check_counts(counts, attention)
    if counts.trainable == 0:
        raise ValueError("the model has no trainable parameters: training it does nothing; "
                         "count a forward pass with forward_flops_per_token / count_forward_flops")
    n, n_train = counts.matmul, counts.trainable_matmul
    per_token = _matmul_training(n, n_train)
    if n_train == n:
        words = (f"6N per token (Kaplan et al. 2020), N = {n:,} matmul weights (every nn.Linear, LM head "
                 "included; embedding lookups, biases and norms left out)")
    else:
        words = (f"4N + 2N_trainable per token, N = {n:,} matmul weights, N_trainable = {n_train:,} "
                 "(forward 2N and activation gradients 2N through every weight; weight gradients only for "
                 "the trainable ones)")
    if attention is not None:
        per_token += 3 * attention.forward_per_token()
    return FlopCount(per_token, words + _attention_words(attention, 12))


def count_forward_flops(counts: ParamCounts, attention: Attention | None = None) -> FlopCount:
    """Forward FLOPs per token from counts: 2·N (+ 4·L·d·T)."""
    _check_counts(counts, attention)
    per_token = 2.0 * counts.matmul
    if attention is not None:
        per_token += attention.forward_per_token()
    words = f"2N per token (forward only), N = {counts.matmul:,} matmul weights"
    return FlopCount(per_token, words + _attention_words(attention, 4))


def training_flops_per_token(model: nn.Module, seq_len: int | None = None) -> FlopCount:
    """Training FLOPs per token of `model` as it stands (requires_grad says what trains), with the
    attention term at sequence length `seq_len` if given. Fills TrainConfig.flops_per_token/flops_method:
    fc = training_flops_per_token(model, seq_len=64); TrainConfig(..., flops_per_token=fc.per_token,
    flops_method=fc.method)."""
    attention = None if seq_len is None else attention_of(model, seq_len)
    return count_training_flops(param_counts(model), attention)


def forward_flops_per_token(model: nn.Module, seq_len: int | None = None) -> FlopCount:
    """Forward-only FLOPs per token (scoring, generation), attention at `seq_len` positions if given."""
    attention = None if seq_len is None else attention_of(model, seq_len)
    return count_forward_flops(param_counts(model), attention)


# ---------------------------------------------------------------------------------------------
# FLOPs for a number of tokens
# ---------------------------------------------------------------------------------------------
def full_training_flops(n_params: float, tokens: float) -> float:
    """6·N·D: every weight trains on D tokens. full_training_flops(1e6, 1e3) -> 6e9."""
    _check_count("n_params", n_params)
    _check_count("tokens", tokens, allow_zero=True)
    return _matmul_training(n_params, n_params) * tokens


def lora_training_flops(n_params_frozen: float, n_params_trainable: float, tokens: float) -> float:
    """(4·N_frozen + 6·N_lora)·D = (4·N + 2·N_lora)·D with N = N_frozen + N_lora (matmul weights).
    n_params_trainable = 0 gives the frozen-only lower bound. lora_training_flops(1e6, 1e3, 1e3) -> 4.006e9."""
    _check_count("n_params_frozen", n_params_frozen)
    _check_count("n_params_trainable", n_params_trainable, allow_zero=True)
    _check_count("tokens", tokens, allow_zero=True)
    return _matmul_training(n_params_frozen + n_params_trainable, n_params_trainable) * tokens


def inference_flops(n_params: float, tokens: float) -> float:
    """2·N per token processed (prompt or generated), forward only: inference_flops(1e6, 10) -> 2e7."""
    _check_count("n_params", n_params)
    _check_count("tokens", tokens, allow_zero=True)
    return 2.0 * n_params * tokens


class InheritedCompute(NamedTuple):
    flops: float
    source: str


def inherited_pretraining_flops(spec) -> InheritedCompute:
    """The pretraining compute a model carries into the instruct route: 6 × parameters × tokens from
    its model card (`helpers.instruct.models.ModelSpec`). The card's parameters include the embeddings,
    which for a tied-embedding model (SmolLM2) ≈ the matmul weights, as the table is also the LM head."""
    missing = [f for f in ("name", "parameters", "training_tokens", "training_tokens_source") if not hasattr(spec, f)]
    if missing:
        raise TypeError(f"spec must be a helpers.instruct.models.ModelSpec, got {type(spec).__name__} (no "
                        f"{', '.join(missing)}): use helpers.instruct.models.get_spec(name)")
    _check_count(f"{spec.name}.parameters", spec.parameters)
    _check_count(f"{spec.name}.training_tokens", spec.training_tokens)
    flops = full_training_flops(spec.parameters, spec.training_tokens)
    source = (f"6 x {spec.parameters:,} parameters x {spec.training_tokens:.3g} tokens "
              f"({spec.training_tokens_source})")
    return InheritedCompute(flops, source)
