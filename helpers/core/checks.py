"""Argument checks for public entry points: one message shape for every "bad input" error.

Each check raises (ValueError for a wrong value, TypeError for a wrong kind of object) with a message that
names the argument, the value it got and, when the caller passes one, the fix:

    count("n", -5)            -> ValueError: n must be an integer >= 0, got -5
    number("volume", nan, minimum=0, fix="pass requests per month")
                              -> ValueError: volume must be a finite number >= 0, got nan: pass requests per month

A bool is refused where a number is expected (`True` is an int to Python, never a count to a caller), and
NaN or infinity wherever a finite number is expected. Each check returns the value, so a caller can write
`n = count("n", n)` once at its boundary.

Left out on purpose: tensor checks (shapes and dtypes belong to the module that knows them) and coercion
(a string "5" is refused, not parsed: the caller's bug should surface where it is made).
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sized


def _fail(error: type[Exception], name: str, wanted: str, value, fix: str) -> None:
    raise error(f"{name} must be {wanted}, got {value!r}" + (f": {fix}" if fix else ""))


def count(name: str, value, minimum: int = 0, fix: str = "") -> int:
    """An integer >= minimum (bools and floats refused): count("steps", 3) -> 3."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        wanted = f"an integer >= {minimum}" + (" (a bool is not a count)" if isinstance(value, bool) else "")
        _fail(ValueError, name, wanted, value, fix)
    return int(value)


def number(name: str, value, minimum: float | None = None, maximum: float | None = None,
           above_minimum: bool = False, fix: str = "") -> float:
    """A finite real number within the bounds (NaN, inf and bools refused): number("p", 0.5, 0, 1) -> 0.5.

    above_minimum=True makes the lower bound strict: number("price", 0, 0, above_minimum=True) raises."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if above_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if above_minimum else '>='} {minimum:g}")
        if maximum is not None:
            bounds.append(f"<= {maximum:g}")
        _fail(ValueError, name, "a finite number" + (" " + " and ".join(bounds) if bounds else ""), value, fix)
    return float(value)


def flag(name: str, value, fix: str = "") -> bool:
    """True or False, nothing else (1, "yes" and None are refused)."""
    if not isinstance(value, bool):
        _fail(ValueError, name, "True or False", value, fix)
    return value


def text(name: str, value, fix: str = "") -> str:
    """A non-empty string (whitespace only counts as empty)."""
    if not isinstance(value, str) or not value.strip():
        _fail(ValueError if isinstance(value, str) else TypeError, name, "a non-empty string", value, fix)
    return value


def one_of(name: str, value, choices, fix: str = "") -> object:
    """`value` if it is one of `choices`: one_of("too_long", "drop", ("drop", "truncate")) -> 'drop'."""
    if isinstance(value, bool) or value not in choices:
        _fail(ValueError, name, "one of " + ", ".join(repr(c) for c in choices), value, fix)
    return value


def instance(name: str, value, kind: type | tuple[type, ...], fix: str = "") -> object:
    """`value` if it is an instance of `kind`, else a TypeError naming the type it is."""
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(f"a {_public_name(k)}" for k in kinds)
        raise TypeError(f"{name} must be {wanted}, got {type(value).__name__} {_short(value)}"
                        + (f": {fix}" if fix else ""))
    return value


def non_empty(name: str, value, fix: str = "") -> Sized:
    """A sized collection (list, tuple, DataFrame...) with at least one item; a str is refused (not a list)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sized):
        raise TypeError(f"{name} must be a list (or another sized collection), got {type(value).__name__} "
                        f"{_short(value)}" + (f": {fix}" if fix else ""))
    if len(value) == 0:
        raise ValueError(f"{name} is empty" + (f": {fix}" if fix else ""))
    return value


def token_ids(name: str, value, fix: str = "", vocab_size: int | None = None) -> list[int]:
    """A non-empty list of integer token ids >= 0 (a list, tuple or 1-D tensor): token_ids("ids", [5, 6]).

    With `vocab_size`, ids the model has no embedding for are refused here, by name, instead of torch's
    "index out of range in self" from deep inside the forward pass."""
    if hasattr(value, "tolist") and getattr(value, "ndim", 1) == 1:
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of token ids, got {type(value).__name__} {_short(value)}"
                        + (f": {fix}" if fix else ""))
    if not value:
        raise ValueError(f"{name} is empty: it needs at least one token id" + (f": {fix}" if fix else ""))
    for i, t in enumerate(value):
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
            raise ValueError(f"{name}[{i}] must be a token id (an integer >= 0), got {t!r}"
                             + (f": {fix}" if fix else ""))
    if vocab_size is not None and max(value) >= vocab_size:
        raise ValueError(f"{name} contains token id {max(value)}, outside the model's vocabulary (vocab_size="
                         f"{vocab_size}): encode the text with the model's own tokenizer")
    return [int(t) for t in value]


def vocab_size_of(model) -> int | None:
    """The number of token embeddings of a transformers model (or a peft wrapper), or of a model whose config has
    vocab_size (our GPT); None when it cannot be told."""
    embeddings = getattr(model, "get_input_embeddings", None)
    if callable(embeddings):
        table = embeddings()
        if getattr(table, "num_embeddings", None) is not None:
            return int(table.num_embeddings)
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    return size if isinstance(size, int) else None


def _public_name(kind: type) -> str:
    """The shortest import path that reaches a class: torch.nn.modules.module.Module -> 'torch.nn.Module'."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    parts = kind.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None and getattr(module, kind.__qualname__, None) is kind:
            return f"{'.'.join(parts[:end])}.{kind.__qualname__}"
    return f"{kind.__module__}.{kind.__qualname__}"


def _short(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
