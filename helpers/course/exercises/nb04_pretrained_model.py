"""Self-checking exercises of notebook 04 (the pretrained model): each check and the hints for its usual mistakes."""

from __future__ import annotations

import math
from typing import Any

from helpers.course.exercises.common import Feedback, exercise, numeric
from helpers.instruct.models import get_spec
from helpers.measure.flops import inherited_pretraining_flops


@exercise(
    "04",
    1,
    "Inherited compute",
    "How many FLOPs of pretraining does SmolLM2-135M-Instruct carry into "
    "the instruct route? Use 6 x parameters x training tokens with the registry's "
    "`helpers.instruct.models.get_spec('smollm2-135m-instruct')`.",
)
def _ex04_1(answer: Any) -> Feedback:
    spec = get_spec("smollm2-135m-instruct")
    want = inherited_pretraining_flops(spec).flops  # 6 x parameters x tokens
    return numeric(
        answer,
        want,
        [
            (
                2 * spec.parameters * spec.training_tokens,
                "training costs forward + backward: 6, not 2, per parameter per token.",
            ),
            (want / 1e9, "the answer is in FLOPs, not GFLOPs."),
            (want / 1e12, "the answer is in FLOPs, not TFLOPs."),
            (6 * spec.parameters, "multiply by the number of training tokens as well."),
        ],
        "6 x parameters x tokens from the spec",
        "that is the compute the instruct route gets for free.",
        rel=1e-3,
    )


LOSSES = (2.0, 3.0, 4.0, 1.0)


@exercise(
    "04",
    2,
    "Perplexity",
    f"A model's per-token losses (natural log) on a text are {list(LOSSES)}. "
    "What is its perplexity on that text?",
)
def _ex04_2(answer: Any) -> Feedback:
    mean = sum(LOSSES) / len(LOSSES)
    return numeric(
        answer,
        math.exp(mean),
        [
            (math.exp(sum(LOSSES)), "average the losses over tokens before exponentiating."),
            (sum(math.exp(x) for x in LOSSES) / len(LOSSES), "exponentiate the mean loss, not each loss."),
            (2**mean, "the losses are natural logarithms: use e, not 2."),
            (mean, "perplexity is e to the loss."),
        ],
        "perplexity = e ** (mean loss per token)",
        "a perplexity of k is as unsure as a fair choice among k tokens.",
        rel=1e-4,
    )
