"""Bad input at the public boundary: each row is (call, expected error type, a phrase of the message).

Issue 13's battery, for the entry points outside the training loop (the loop's own table is
tests/test_bad_inputs_core.py). Every error must name the argument, the value and the fix.

Run:  .venv/bin/python -m pytest tests/test_bad_inputs.py -q
"""

from __future__ import annotations

import pytest

from helpers.core import data

CASES = [
    # (id, call, error type, phrase in the message)
    ("test_set negative n", lambda: data.test_set(-5), ValueError, "n=-5"),
    ("test_set float n", lambda: data.test_set(2.5), ValueError, "whole number"),
    ("test_set bool n", lambda: data.test_set(True), ValueError, "n=True"),
    ("test_set zero max_chars", lambda: data.test_set(4, max_chars=0), ValueError, "max_chars=0"),
    ("labelled_pool negative n", lambda: data.labelled_pool(-1), ValueError, "n=-1"),
    ("labelled_pool too many", lambda: data.labelled_pool(10**9), ValueError, "use n <="),
    ("pretraining_text negative", lambda: data.pretraining_text(max_chars=-10), ValueError, "max_chars=-10"),
]


@pytest.mark.parametrize("call, error, phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(call, error, phrase):
    with pytest.raises(error, match=None) as info:
        call()
    assert phrase in str(info.value), f"message does not name {phrase!r}: {info.value}"


def test_a_valid_call_still_works():
    assert len(data.test_set(4)) == 4 and list(data.test_set(4)["label"]) == [0, 1, 0, 1]
