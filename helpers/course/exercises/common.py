"""The machinery every notebook's exercises share: the registry, `check_exercise`, feedback, and the
small tools checks use to call a learner's function or compare a number without a traceback.

    @exercise("03", 3, "The loss of knowing nothing", "What cross-entropy loss does ...?")
    def _check(answer) -> Feedback: return numeric(answer, math.log(1024), mistakes, general, ok)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Feedback:
    ok: bool
    message: str

    def __repr__(self) -> str:  # what a notebook cell shows
        return f"{'Correct' if self.ok else 'Not yet'}: {self.message}"


@dataclass(frozen=True)
class Exercise:
    notebook: str  # "01" .. "07"
    number: int
    title: str
    task: str  # what the learner is asked, in one paragraph (shown in the notebook)
    check: Callable[[Any], Feedback]


EXERCISES: dict[tuple[str, int], Exercise] = {}


def exercise(notebook: str, number: int, title: str, task: str):
    """Register a check function as exercise `number` of `notebook`."""

    def register(check: Callable[[Any], Feedback]) -> Callable[[Any], Feedback]:
        EXERCISES[(notebook, number)] = Exercise(notebook, number, title, task, check)
        return check

    return register


def _notebook(notebook: str | int) -> str:
    """'03', '3' or 3 -> '03'; anything else names the argument."""
    if isinstance(notebook, bool) or not isinstance(notebook, (str, int)):
        raise TypeError(f"notebook must be a notebook number such as '03' or 3, got {notebook!r}")
    return f"{int(notebook):02d}" if str(notebook).isdigit() else str(notebook)


def exercises_for(notebook: str | int) -> list[Exercise]:
    """The exercises of one notebook ("03" or 3), in order; [] for a notebook without any (00)."""
    key = _notebook(notebook)
    return [e for (nb, _), e in sorted(EXERCISES.items()) if nb == key]


def check_exercise(notebook: str | int, number: int, answer: Any) -> Feedback:
    """Grade `answer` for exercise `number` of `notebook` ("01" or 1)."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError(f"check_exercise(notebook, number, answer) takes an exercise number such as 1, got "
                        f"number={number!r}")
    key = (_notebook(notebook), number)
    if key not in EXERCISES:
        known = ", ".join(f"{nb}/{n}" for nb, n in sorted(EXERCISES))
        raise KeyError(f"no exercise {key[1]} in notebook {key[0]}: the exercises are {known}")
    if answer is None or answer is ...:
        return Feedback(False, "replace `None` with your answer, then run the cell again.")
    try:
        return EXERCISES[key].check(answer)
    except Raised as err:
        return Feedback(False, str(err))


# --- small tools for the checks ---------------------------------------------------------------------
class Raised(Exception):
    """The learner's function raised: turned into feedback, never into a traceback."""


def call(fn: Any, *args: Any) -> Any:
    """Call the learner's function; a crash becomes `Raised` naming the error and the arguments."""
    if not callable(fn):
        raise Raised(f"expected a function, got {type(fn).__name__}: pass the function itself, without ()")
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - any error in learner code becomes a hint
        shown = ", ".join(repr(a) for a in args)
        raise Raised(f"your function raised {type(err).__name__}: {err} (called with {shown})") from None


def to_number(answer: Any) -> float:
    """The learner's answer as a finite float, or feedback saying what kind of value was expected."""
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Raised(f"expected a number, got {type(answer).__name__} {answer!r}") from None
    if not math.isfinite(value):
        raise Raised(f"expected a finite number, got {value}")
    return value


def close(a: float, b: float, rel: float = 1e-3) -> bool:
    """Equal within a relative tolerance (the checks choose it: 1e-6 for exact formulas)."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def numeric(
    answer: Any,
    expected: float,
    mistakes: Sequence[tuple[float, str]],
    general: str,
    ok: str,
    rel: float = 1e-3,
) -> Feedback:
    """Compare a number with `expected`; a known wrong value (mistakes) gets its own hint."""
    value = to_number(answer)
    if close(value, expected, rel):
        return Feedback(True, ok)
    for wrong, hint in mistakes:
        if close(value, wrong, rel):
            return Feedback(False, hint)
    return Feedback(False, f"{general} (your value is too {'high' if value > expected else 'low'}).")
