"""Self-checking exercises of notebook 03 (pretraining): each check and the hints for its usual mistakes."""

from __future__ import annotations

import math
from typing import Any

from helpers.core.train_config import TrainConfig, lr_factor
from helpers.course.catchup import gpt_config
from helpers.course.exercises.common import Feedback, call, close, exercise, numeric, to_number
from helpers.course.profiles import get_profile
from helpers.measure.flops import param_counts, training_flops_per_token
from helpers.scratch.gpt import GPT


def _ci_tiny_gpt():
    sizes = get_profile("ci").pretrain
    return GPT(gpt_config(sizes, vocab_size=get_profile("ci").tokenizer.vocab_size)), sizes


@exercise(
    "03",
    1,
    "What the ci run cost",
    "With 6·N·D, how many FLOPs does pretraining the tiny GPT of the `ci` profile cost? "
    "N = `param_counts(model).matmul` (helpers.measure.flops: the weights that multiply, the tied LM head "
    "included) of `GPT(gpt_config(get_profile('ci').pretrain, vocab_size=1024))` (gpt_config: "
    "helpers.course.catchup), D = tokens seen in `max_steps` steps of `batch_size` rows of `block_size` "
    "tokens.",
)
def _ex03_1(answer: Any) -> Feedback:
    model, s = _ci_tiny_gpt()
    counts = param_counts(model)
    n, d = counts.matmul, s.max_steps * s.batch_size * s.block_size
    return numeric(
        answer,
        training_flops_per_token(model).times(d),  # 6·N_matmul per token: the loop's own count
        [
            (
                2 * n * d,
                "2·N·D is one forward pass; training also runs the backward pass (about twice the forward).",
            ),
            (
                6 * n * s.max_steps,
                "D counts tokens, not steps: each step sees batch_size rows of block_size tokens.",
            ),
            (
                6 * n * s.max_steps * s.batch_size,
                "D counts tokens, not rows: each row holds block_size tokens.",
            ),
            (
                6 * counts.total * d,
                "N counts matmul weights (param_counts(model).matmul): the embedding lookup costs no FLOPs.",
            ),
            (
                6 * counts.non_embedding * d,
                "that is Kaplan's non-embedding N, which leaves out the tied LM head; but the head multiplies "
                "every output by the embedding table, so its FLOPs count: use param_counts(model).matmul.",
            ),
        ],
        "check N and D separately",
        "6 x matmul weights x tokens seen: the FLOPs the training loop records for this run.",
        rel=1e-6,
    )


@exercise(
    "03",
    2,
    "The learning-rate schedule",
    "Write `my_lr_multiplier(step, warmup_steps, max_steps, "
    "min_ratio)` (step is 0-based): a linear warm-up reaching 1.0 at step warmup_steps - 1, then a cosine "
    "decay reaching min_ratio at the last step, max_steps - 1.",
)
def _ex03_2(fn: Any) -> Feedback:
    for warmup, steps, ratio in ((2, 10, 0.1), (5, 50, 0.0), (1, 7, 0.25)):
        config = TrainConfig(max_steps=steps, warmup_steps=warmup, min_lr_ratio=ratio)
        for step in range(steps):
            got, want = to_number(call(fn, step, warmup, steps, ratio)), lr_factor(step, config)
            if close(got, want, 1e-6):
                continue
            if step == 0 and got == 0:
                return Feedback(
                    False,
                    "at step 0 the rate is already 1/warmup_steps of the peak: a zero first "
                    "step would waste it.",
                )
            if step == steps - 1:
                return Feedback(
                    False,
                    "at the last step (max_steps - 1) the multiplier must have reached min_ratio exactly.",
                )
            phase = "warm-up" if step < warmup else "cosine decay"
            return Feedback(False, f"wrong during the {phase} (step {step} of {steps}, warm-up {warmup}).")
    return Feedback(True, "the same schedule as helpers.core.training.lr_factor at every step of three configs.")


@exercise(
    "03",
    3,
    "The loss of knowing nothing",
    "What cross-entropy loss does a model get that gives every "
    "token of the `ci` tokenizer's vocabulary (1024 tokens) the same probability?",
)
def _ex03_3(answer: Any) -> Feedback:
    v = get_profile("ci").tokenizer.vocab_size
    return numeric(
        answer,
        math.log(v),
        [
            (math.log2(v), "cross-entropy in PyTorch uses the natural logarithm, not log base 2."),
            (1 / v, "that is the probability of the right token; the loss is minus its logarithm."),
            (-math.log(v), "the loss is minus the log-probability: it is positive."),
        ],
        "loss = -log(probability of the right token)",
        "a fresh model should start near this loss: notebook 03's first loss is close to it.",
        rel=1e-4,
    )
