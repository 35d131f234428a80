"""Self-checking exercises of notebook 06 (train vs instruct): each check and the hints for its usual mistakes."""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.course.exercises.common import Feedback, call, exercise
from helpers.experiment.report import examples_to_reach


@exercise(
    "06",
    1,
    "Examples to reach a target",
    "Write `my_needed(ns, accuracies, target)` returning the smallest "
    "N whose accuracy reaches the target *and* stays there for every larger N measured, or None.",
)
def _ex06_1(fn: Any) -> Feedback:
    cases = [
        ((4, 16, 64), (0.55, 0.72, 0.81), 0.7),
        ((4, 16, 64), (0.8, 0.6, 0.9), 0.75),
        ((4, 16), (0.5, 0.6), 0.7),
        ((64, 4, 16), (0.9, 0.5, 0.7), 0.7),
        ((1, 2), (0.7, 0.7), 0.7),
    ]
    for ns, accs, target in cases:
        got, want = call(fn, list(ns), list(accs), target), examples_to_reach(ns, accs, target)
        if got == want:
            continue
        if accs == (0.8, 0.6, 0.9):
            return Feedback(
                False, "a lucky small N does not count: every larger N must stay at the target too."
            )
        if want is None:
            return Feedback(False, "when no N reaches the target, say so with None.")
        if isinstance(got, float) and got in accs:
            return Feedback(False, "return the number of examples N, not the accuracy.")
        if ns == (64, 4, 16):
            return Feedback(False, "the measurements may come in any order: sort them by N first.")
        if accs == (0.7, 0.7):
            return Feedback(False, "an accuracy equal to the target reaches it.")
        return Feedback(False, f"wrong for N={ns}, accuracies={accs}, target={target}.")
    return Feedback(True, "the same answers as helpers.experiment.report.examples_to_reach, lucky runs excluded.")


@exercise(
    "06",
    2,
    "Label noise",
    "Write `my_flip(labels, fraction, seed)` for 0/1 labels: in each class c, flip exactly "
    "round(fraction * n_c) of its n_c labels, chosen at random with `seed`, so the labels stay balanced, the "
    "same seed flips the same ones and a larger fraction flips a superset of a smaller one (every point of "
    "the noise curve then differs only in the extra flips).",
)
def _ex06_2(fn: Any) -> Feedback:
    labels = [0, 1, 0, 0, 1] * 4  # 12 negatives, 8 positives: unbalanced on purpose
    y = np.asarray(labels)
    for fraction in (0.0, 0.25, 0.5, 1.0):
        got = np.asarray(call(fn, list(labels), fraction, 0))
        if got.shape != (len(labels),) or not np.isin(got, (0, 1)).all():
            return Feedback(False, "return one 0/1 label per input label.")
        per_class = [int((got != y)[y == c].sum()) for c in (0, 1)]
        want = [round(fraction * int((y == c).sum())) for c in (0, 1)]
        if per_class != want:
            total = sum(per_class) == round(fraction * len(labels))
            return Feedback(
                False,
                f"fraction {fraction}: flip {want[0]} of the 12 negatives and {want[1]} of the 8 positives; "
                f"yours flipped {per_class[0]} and {per_class[1]}"
                + (" — the right total, but not the same share of each class." if total else "."),
            )
    first, second = (np.asarray(call(fn, list(labels), 0.4, 0)) for _ in range(2))
    if not np.array_equal(first, second):
        return Feedback(False, "the same seed must flip the same labels: seed your own random generator.")
    small = np.asarray(call(fn, list(labels), 0.2, 0)) != np.asarray(labels)
    large = np.asarray(call(fn, list(labels), 0.4, 0)) != np.asarray(labels)
    if not np.all(large[small]):
        return Feedback(
            False,
            "a larger fraction should flip a superset of a smaller one: draw one order of "
            "positions per seed and flip a longer prefix of it.",
        )
    other = np.asarray(call(fn, list(labels), 0.4, 1)) != np.asarray(labels)
    if np.array_equal(other, large):
        return Feedback(False, "a different seed should (almost always) pick different labels.")
    return Feedback(True, "exact counts, repeatable, nested: each noise level adds flips to the one before.")
