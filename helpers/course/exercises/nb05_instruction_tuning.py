"""Self-checking exercises of notebook 05 (instruction tuning): each check and the hints for its usual mistakes."""

from __future__ import annotations

from typing import Any

from helpers.core.batches import IGNORE_INDEX
from helpers.course.exercises.common import Feedback, call, exercise, numeric
from helpers.instruct.masking import mask_prompt


@exercise(
    "05",
    1,
    "Prompt masking",
    "Write `my_mask(prompt_ids, response_ids)` returning `(input_ids, labels)`: "
    "the ids joined, and labels already shifted (labels[t] is the target of position t, i.e. ids[t+1]) "
    "on response tokens only, -100 everywhere else.",
)
def _ex05_1(fn: Any) -> Feedback:
    for prompt, response in (([5, 6], [7, 8]), ([1, 2, 3], [4]), ([9], [10, 11, 12])):
        got = call(fn, list(prompt), list(response))
        if isinstance(got, dict):
            got = (got.get("input_ids"), got.get("labels"))
        if hasattr(got, "labels"):
            got = (got.input_ids, got.labels)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            return Feedback(False, "return a pair (input_ids, labels).")
        ids, labels = got
        want = mask_prompt(prompt, response)
        if list(ids) != want.input_ids:
            return Feedback(False, "input_ids must be the prompt followed by the response.")
        labels = list(labels)
        if labels == want.labels:
            continue
        if labels == want.input_ids:
            return Feedback(False, "the prompt must not be learned: its positions get -100.")
        if labels == [IGNORE_INDEX] * len(prompt) + list(response):
            return Feedback(
                False, "labels are shifted here: the position *before* a response token predicts it."
            )
        if labels[:-1] == want.labels[:-1]:
            return Feedback(False, "the last position has nothing left to predict in this example.")
        return Feedback(False, f"wrong labels for prompt {prompt} and response {response}.")
    return Feedback(True, "only response tokens are learned, each from the position before it.")


@exercise(
    "05",
    2,
    "LoRA's trainable weights",
    "SmolLM2-135M has 30 layers of width 576; q and o map "
    "576 -> 576, k and v map 576 -> 192 (3 key/value heads of 64). How many trainable weights does LoRA "
    "with r = 8 on q, k, v and o add?",
)
def _ex05_2(answer: Any) -> Feedback:
    shapes = [(576, 576), (576, 192), (576, 192), (576, 576)]  # (in, out) of q, k, v, o
    r, layers = 8, 30
    want = layers * sum(r * (i + o) for i, o in shapes)
    return numeric(
        answer,
        want,
        [
            (
                layers * sum(r * i * o for i, o in shapes),
                "LoRA adds two thin matrices per weight, A (r x in) and "
                "B (out x r), not r copies of the full matrix.",
            ),
            (want / layers, "that is one layer: the adapters sit in all 30."),
            (layers * 4 * r * (576 + 576), "k and v are narrower (576 -> 192) than q and o."),
            (layers * sum(r * i for i, _ in shapes), "B (out x r) has weights too, not only A (r x in)."),
        ],
        "per adapted matrix: r x (in + out)",
        "under 1 % of the model's weights learn the task.",
        rel=1e-9,
    )
