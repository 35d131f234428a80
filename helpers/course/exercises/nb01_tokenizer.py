"""Self-checking exercises of notebook 01 (the tokenizer): each check and the hints for its usual mistakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helpers.course.exercises.common import Feedback, call, exercise, to_number


@exercise(
    "01",
    1,
    "Count pairs",
    "Write `my_count_pairs(ids)` returning a dict {(a, b): count} of every pair of "
    "consecutive ids, e.g. for [1, 2, 3, 1, 2]. Pass the function itself: "
    "`check_exercise('01', 1, my_count_pairs)`.",
)
def _ex01_1(fn: Any) -> Feedback:
    cases = [[1, 2, 3, 1, 2], [7, 7, 7], [5], [], [0, 255, 0, 255, 0]]
    for ids in cases:
        got, want = call(fn, list(ids)), _pairs(ids)
        if not isinstance(got, dict):
            return Feedback(False, f"return a dict {{pair: count}}, not a {type(got).__name__}.")
        if dict(got) != want:
            if ids == [7, 7, 7]:
                return Feedback(
                    False,
                    "check a run of equal ids such as [7, 7, 7]: pairs overlap, and every "
                    "position starts one.",
                )
            if sum(got.values()) == max(len(ids) - 2, 0):
                return Feedback(False, "one pair is missing: a list of n ids has n - 1 consecutive pairs.")
            return Feedback(False, f"wrong counts for {ids}: look at how you pair each id with the next one.")
    return Feedback(True, "pairs counted, overlapping runs and short lists included.")


def _pairs(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:], strict=False):  # ids[1:] is one shorter: the last id starts no pair
        counts[pair] = counts.get(pair, 0) + 1
    return counts


@exercise(
    "01",
    2,
    "One merge",
    "Write `my_merge(ids, pair, new_id)` returning a new list in which every "
    "occurrence of `pair` (left to right, not overlapping) is replaced by `new_id`.",
)
def _ex01_2(fn: Any) -> Feedback:
    cases = [
        ([3, 4, 1, 2, 5], (1, 2), 256),
        ([1, 2], (1, 2), 9),
        ([7, 7, 7], (7, 7), 256),
        ([1], (1, 2), 9),
        ([3, 1, 2, 1, 2, 2], (1, 2), 300),
    ]
    for ids, pair, new in cases:
        original = list(ids)
        got = list(call(fn, original, pair, new))
        want = _merge(ids, pair, new)
        if original != ids:
            return Feedback(
                False, "your function changed the list it was given: build and return a new list."
            )
        if got == want:
            continue
        if ids == [1, 2]:
            return Feedback(
                False, "a pair at the very end of the list is not merged: check the loop's last index."
            )
        if ids == [7, 7, 7] or (new in got and len(got) > len(want)):
            return Feedback(
                False,
                "pairs must not overlap: after replacing a pair, continue after both of its "
                "ids ([7, 7, 7] holds the pair (7, 7) once).",
            )
        return Feedback(False, f"wrong result for {ids} with pair {pair}.")
    return Feedback(True, "merges left to right without overlap, including at the end of the list.")


def _merge(ids: Sequence[int], pair: tuple[int, int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


ITALIAN_SAMPLE = "Perché il reso costa così tanto?"


@exercise(
    "01",
    3,
    "Bytes vs characters",
    f"How many characters and how many UTF-8 bytes does the text "
    f"{ITALIAN_SAMPLE!r} have? Answer a tuple `(characters, bytes)`.",
)
def _ex01_3(answer: Any) -> Feedback:
    chars, n_bytes = len(ITALIAN_SAMPLE), len(ITALIAN_SAMPLE.encode("utf-8"))
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        return Feedback(False, "answer a tuple of two numbers: (characters, bytes).")
    c, b = (to_number(x) for x in answer)
    if (c, b) == (chars, n_bytes):
        return Feedback(
            True,
            "each accented letter is one character but more than one byte: byte-level BPE "
            "starts from the bytes.",
        )
    if (c, b) == (n_bytes, chars):
        return Feedback(False, "the two numbers are swapped: the answer is (characters, bytes).")
    if c == chars and b == chars:
        return Feedback(False, "characters right; bytes: in UTF-8, 'é' and 'ì' are not one byte each.")
    return Feedback(
        False, "count with Python rather than by eye: len() of the text, and of the text encoded as UTF-8."
    )
