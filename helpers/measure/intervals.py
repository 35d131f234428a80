"""How sure is an accuracy? The Wilson score interval of a proportion.

    wilson_interval(45, 50)   # -> Interval(low=0.786, high=0.957): 90 % measured on 50 examples

An accuracy measured on n examples is a sample: with n = 50 a true 85 % model scores anywhere from about
75 % to 95 %. Two numbers are told apart only when their intervals say so. Wilson's interval (1927) keeps
its coverage near the nominal 95 % for small n and for accuracies near 0 or 1, where the textbook
p ± 1.96·sqrt(p(1-p)/n) collapses to a zero-width interval at 0 % and 100 %.

`plot_accuracies` draws several accuracies as bars with their intervals (notebook 04's baselines).

Left out on purpose: intervals for a *difference* of two accuracies on the same examples (McNemar's test
is the tool for paired predictions), bootstrap intervals, multiple-comparison corrections.

Reference: E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
JASA 22 (1927); Brown, Cai & DasGupta, "Interval estimation for a binomial proportion", Stat. Sci. (2001).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the two-sided 95 % point of the standard normal distribution


@dataclass(frozen=True)
class Interval:
    """A proportion measured as `correct` of `n`, with its interval [low, high]."""

    correct: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.correct / self.n

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def wilson_interval(correct: int, n: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of `correct` successes in `n` trials (95 % by default)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"wilson_interval needs n >= 1 examples, got n={n!r}")
    if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct <= n:
        raise ValueError(f"wilson_interval needs 0 <= correct <= n={n}, got correct={correct!r}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"wilson_interval needs z > 0 (1.96 for 95 %), got z={z!r}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(correct, n, max(0.0, centre - half), min(1.0, centre + half))


def plot_accuracies(named: dict[str, Interval], title: str = "", chance: float | None = 0.5, ax=None):
    """Horizontal bars, one per accuracy, each with its interval as an error bar and `correct/n` written
    beside it; a dotted line at `chance` (None: none). Returns the figure (closed, so a notebook shows it once).

        plot_accuracies({"zero-shot": wilson_interval(13, 20), "few-shot": wilson_interval(15, 20)})
    """
    import matplotlib.pyplot as plt  # heavy: imported only when a plot is asked for

    if not named or not all(isinstance(v, Interval) for v in named.values()):
        raise ValueError("named must map labels to Interval values, e.g. {'zero-shot': wilson_interval(13, 20)}")
    labels, values = list(named), list(named.values())
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.5, 0.55 * len(named) + 1.2))
    y = list(range(len(values)))[::-1]
    ax.barh(y, [v.value for v in values], color="#a8c5e0", edgecolor="#1d3557", height=0.6)
    xerr = [[v.value - v.low for v in values], [v.high - v.value for v in values]]
    ax.errorbar([v.value for v in values], y, xerr=xerr, fmt="none", ecolor="black", capsize=4, linewidth=1)
    for yi, v in zip(y, values, strict=True):
        ax.text(min(v.high + 0.02, 0.98), yi, f"{v.value:.0%} ({v.correct}/{v.n})", va="center", fontsize=8,
                ha="left" if v.high < 0.85 else "right")
    if chance is not None:
        ax.axvline(chance, color="tab:red", linestyle=":", linewidth=1, label=f"chance ({chance:.0%})")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(xlim=(0, 1), xlabel="accuracy (bars: 95 % Wilson interval)", title=title)
    fig.tight_layout()
    plt.close(fig)
    return fig
