"""The Wilson interval against scipy's (an independent implementation) and a hand-worked case.

Run: COURSE_PROFILE=ci .venv/bin/python -m pytest -q tests/test_intervals.py
"""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from helpers.measure.intervals import wilson_interval


@pytest.mark.parametrize("correct,n", [(0, 1), (1, 1), (0, 10), (10, 10), (45, 50), (7, 20), (160, 200), (1, 552)])
def test_equals_scipy(correct, n):
    ours = wilson_interval(correct, n)
    ref = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert math.isclose(ours.low, ref.low, abs_tol=1e-9) and math.isclose(ours.high, ref.high, abs_tol=1e-9)


def test_hand_worked():
    # 45 of 50, z = 1.96: centre (0.9 + 0.03842) / 1.07683 = 0.87146, half 0.08545 -> [0.786, 0.957]
    iv = wilson_interval(45, 50)
    assert (round(iv.low, 3), round(iv.high, 3)) == (0.786, 0.957)
    assert iv.value == 0.9 and iv.contains(0.8) and not iv.contains(0.96)


def test_all_wrong_is_not_a_point():
    iv = wilson_interval(0, 10)  # the textbook interval would be [0, 0]
    assert iv.low == 0 and 0.2 < iv.high < 0.35


@pytest.mark.parametrize("correct,n", [(1, 0), (-1, 5), (6, 5), (True, 5), (2.0, 5)])
def test_bad_counts_named(correct, n):
    with pytest.raises(ValueError, match="wilson_interval needs"):
        wilson_interval(correct, n)


def test_plot_accuracies_draws_one_bar_and_one_error_bar_per_accuracy():
    from helpers.measure.intervals import plot_accuracies

    fig = plot_accuracies({"zero-shot": wilson_interval(13, 20), "few-shot": wilson_interval(20, 20)}, "t")
    ax = fig.axes[0]
    assert [round(p.get_width(), 3) for p in ax.patches] == [0.65, 1.0]
    (bars,) = [c for c in ax.containers if hasattr(c, "has_xerr")]
    segments = bars.lines[2][0].get_segments()
    assert [tuple(round(x, 3) for x in (s[0][0], s[1][0])) for s in segments] == [
        (round(wilson_interval(13, 20).low, 3), round(wilson_interval(13, 20).high, 3)),
        (round(wilson_interval(20, 20).low, 3), 1.0)]
    with pytest.raises(ValueError, match="Interval values"):
        plot_accuracies({"x": 0.5})
