"""How sure is an accuracy? The Wilson score interval of a proportion.

    wilson_interval(45, 50)   # -> Interval(low=0.786, high=0.957): 90 % measured on 50 examples

An accuracy measured on n examples is a sample: with n = 50 a true 85 % model scores anywhere from about
75 % to 95 %. Two numbers are told apart only when their intervals say so. Wilson's interval (1927) keeps
its coverage near the nominal 95 % for small n and for accuracies near 0 or 1, where the textbook
p ± 1.96·sqrt(p(1-p)/n) collapses to a zero-width interval at 0 % and 100 %.

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
