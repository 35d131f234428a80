"""Self-checking exercises of notebook 02 (the tiny GPT): each check and the hints for its usual mistakes."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from helpers.course.exercises.common import Feedback, call, exercise, numeric, to_number
from helpers.measure.flops import forward_flops_per_token, param_counts
from helpers.scratch.gpt import GPT, GPTConfig

GPT_SIZES = [
    dict(n_layer=2, n_head=2, n_embd=64, vocab_size=1024, block_size=64),
    dict(n_layer=3, n_head=3, n_embd=48, vocab_size=300, block_size=32),
    dict(n_layer=1, n_head=4, n_embd=128, vocab_size=512, block_size=128),
]


@exercise(
    "02",
    1,
    "Count the parameters",
    "Write `my_n_params(n_layer, n_embd, vocab_size, block_size)` "
    "returning the number of parameters of the course GPT (helpers.scratch.gpt: biases in every Linear, "
    "LayerNorms with bias, LM head tied to the token embedding) from the sizes alone, without building it.",
)
def _ex02_1(fn: Any) -> Feedback:
    for sizes in GPT_SIZES:
        model = GPT(GPTConfig(**sizes))
        want = param_counts(model).total
        L, C, V, T = sizes["n_layer"], sizes["n_embd"], sizes["vocab_size"], sizes["block_size"]
        got = to_number(call(fn, L, C, V, T))
        if got == want:
            continue
        # The usual omissions, measured on the model itself so the hints follow helpers.scratch.gpt's layout.
        norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
        linear_biases = sum(
            m.bias.numel() for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None
        )
        hints = {
            V * C: "the LM head is tied: it reuses the token-embedding matrix, so it adds no weights.",
            -T * C: "the position embeddings (one vector per position) are missing.",
            -sum(m.weight.numel() + m.bias.numel() for m in norms): "the LayerNorms are missing: each has a "
            "weight and a bias of size C.",
            -sum(m.bias.numel() for m in norms): "each LayerNorm has a bias as well as a weight.",
            -linear_biases: "the biases of the Linear layers are missing.",
            -V * C: "the token embedding (vocab x C) is missing.",
        }
        diff = got - want
        return Feedback(
            False,
            hints.get(
                diff,
                f"not the count for {sizes}: list the modules of one block, "
                "then what sits outside the blocks.",
            ),
        )
    return Feedback(True, "your formula matches the model's parameter count on three sizes.")


@exercise(
    "02",
    2,
    "The causal mask",
    "Write `my_causal_mask(T)` returning a (T, T) bool tensor that is True "
    "where query position i may attend to key position j.",
)
def _ex02_2(fn: Any) -> Feedback:
    for T in (4, 1, 7):  # 4 first: at T=1 an all-False mask looks like "diagonal missing"
        got = call(fn, T)
        if not isinstance(got, torch.Tensor):
            return Feedback(False, f"return a torch tensor, not {type(got).__name__}.")
        if got.dtype != torch.bool:
            return Feedback(False, f"return a bool tensor (True = may attend), not {got.dtype}.")
        if tuple(got.shape) != (T, T):
            return Feedback(False, f"causal_mask({T}) should have shape ({T}, {T}), got {tuple(got.shape)}.")
        want = torch.tril(torch.ones(T, T, dtype=torch.bool))
        if torch.equal(got, want):
            continue
        if torch.equal(got, want.T):
            return Feedback(
                False, "rows are queries, columns keys: a query may look back at earlier keys, not ahead."
            )
        if torch.equal(got, want & ~torch.eye(T, dtype=torch.bool)):
            return Feedback(False, "a position may attend to itself: the diagonal is allowed.")
        if torch.equal(got, ~want):
            return Feedback(False, "True must mean *may attend*: your mask marks the forbidden positions.")
        return Feedback(False, f"causal_mask({T}) is not causal: row i may use columns 0..i only.")
    return Feedback(True, "the mask lets each position see itself and the past, never the future.")


@exercise(
    "02",
    3,
    "Forward FLOPs per token",
    "With N = `helpers.measure.flops.param_counts(model).matmul` (the weights that take part in a matrix "
    "multiply, the tied LM head included), how many FLOPs does one forward pass of "
    "`GPT(GPTConfig.preset('gpt-micro', vocab_size=1024))` cost per token (ignore attention's "
    "T-dependent part)?",
)
def _ex02_3(answer: Any) -> Feedback:
    model = GPT(GPTConfig.preset("gpt-micro", vocab_size=1024))
    counts = param_counts(model)
    n = counts.matmul
    return numeric(
        answer,
        forward_flops_per_token(model).per_token,  # 2·N_matmul without a sequence length
        [
            (
                6 * n,
                "6 per weight is training (forward + backward): a forward pass "
                "costs a multiply and an add per weight.",
            ),
            (n, "each weight costs two FLOPs per token: a multiply and an add."),
            (
                2 * counts.total,
                "count only weights that take part in a matrix multiply: an embedding lookup costs no FLOPs, "
                "but the tied LM head multiplies once more.",
            ),
            (
                2 * counts.non_embedding,
                "that N (non-embedding) leaves the tied LM head out: it reuses the embedding table, and multiplies "
                "every output vector by it (param_counts(model).matmul counts it).",
            ),
        ],
        "count the matmul weights, then FLOPs per weight per token",
        "2 FLOPs per matmul weight per token, the embedding lookup free.",
        rel=1e-6,
    )
