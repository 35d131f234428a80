"""The canary memorisation test: candidates, planting, scoring, rank and exposure.

    .venv/bin/python -m pytest tests/test_canary.py -q
"""

from __future__ import annotations

import math

import pytest
import torch

from helpers.deploy import canary as C
from helpers.scratch.gpt import GPT, GPTConfig


def test_exposure_hand_values():
    assert C.exposure(1, 1024) == 10.0  # memorised: the maximum, log2(1024)
    assert C.exposure(512, 1024) == 1.0
    assert C.exposure(1024, 1024) == 0.0
    with pytest.raises(ValueError, match="rank"):
        C.exposure(0, 10)


def test_canary_candidates_and_planting():
    canary = C.make_canary(seed=3)
    assert len(canary.secret) == len(canary.pattern) and canary.secret.startswith("347 ")
    assert canary.secret in canary.text
    others = C.candidates(canary, 200, seed=1)
    assert len(set(others)) == 200 and canary.secret not in others
    assert all(len(s) == len(canary.pattern) and s[3] == " " for s in others)
    texts = [f"message {i}" for i in range(10)]
    planted = C.plant(texts, canary.text, repeats=4, seed=0)
    assert sum(canary.text in t for t in planted) == 4 and len(planted) == 10
    assert C.plant(texts, canary.text, 4, seed=0) == planted  # seeded


@pytest.mark.parametrize(
    "call, match",
    [(lambda: C.make_canary(pattern="347 123"), "'#'"), (lambda: C.make_canary(template="no slot"), "secret"),
     (lambda: C.candidates(C.make_canary(pattern="##"), 100), "n_candidates"),
     (lambda: C.plant(["a", "b"], "s", 3), "repeats")],
)
def test_bad_inputs_name_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_text_scorer_equals_one_by_one_log_softmax():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=256, block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    encode = lambda s: list(s.encode())  # noqa: E731 - bytes as tokens: lengths differ, padding is exercised
    texts = ["ab", "hello", "a longer text here"]
    score = C.text_scorer(model, encode, batch_size=2)
    got = score(texts)
    for text, value in zip(texts, got, strict=True):
        ids = torch.tensor([encode(text)])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids)[0, :-1], -1)
        expected = logp.gather(-1, ids[0, 1:, None]).sum().item()
        assert math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-4)


def test_measure_exposure_rank_and_ties():
    canary = C.make_canary(seed=0)
    prefers_canary = lambda texts: [0.0 if canary.secret in t else -1.0 for t in texts]  # noqa: E731
    best = C.measure_exposure(prefers_canary, canary, n_candidates=99)
    assert best.rank == 1 and best.n_total == 100 and best.exposure == pytest.approx(math.log2(100))
    constant = C.measure_exposure(lambda texts: [0.0] * len(texts), canary, n_candidates=99)
    assert constant.rank == 100 and constant.exposure == 0.0  # ties count against the canary
    # 17 candidates score above the canary, one ties it, the rest below: rank 19 of 100.
    middle = lambda texts: [0.0] + [1.0] * 17 + [0.0] + [-1.0] * (len(texts) - 19)  # noqa: E731
    ranked = C.measure_exposure(middle, canary, n_candidates=99)
    assert ranked.rank == 19 and ranked.exposure == pytest.approx(math.log2(100 / 19))
    assert ranked.canary_logprob == 0.0 and ranked.median_logprob == -1.0


def test_notebook_exposure_equals_helpers():
    from tests.notebook_defs import load_definitions

    nb07 = load_definitions("07_local_deployment.ipynb")
    for rank, n in [(1, 1000), (17, 1000), (999, 1000), (3, 8)]:
        assert nb07.exposure(rank, n) == C.exposure(rank, n)
