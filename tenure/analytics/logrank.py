"""Two-group log-rank test computed from two life tables."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tenure.analytics.distributions import chi2_1_sf
from tenure.analytics.lifetable import LifeTable

__all__ = ["LogRankResult", "logrank_test"]


@dataclass(frozen=True, slots=True)
class LogRankResult:
    """Log-rank test outcome; ``observed_a``/``expected_a`` are group A's O and E."""

    statistic: float
    p_value: float
    observed_a: int
    expected_a: float
    variance: float
    degrees_of_freedom: int = 1


def logrank_test(table_a: LifeTable, table_b: LifeTable) -> LogRankResult:
    """Unweighted log-rank test of equal hazards between two groups.

    Equals ``lifelines.statistics.logrank_test(durations_a, durations_b, observed_a,
    observed_b)`` (default weightings, ``t_0=-1``). At each day with ``d > 0`` events among
    ``n = n_a + n_b`` at risk::

        E_a += n_a d / n
        V   += n_a n_b d (n - d) / (n^2 (n - 1))      (0 when n == 1)

    statistic ``U = (O_a - E_a)^2 / V`` (``0`` when ``V == 0``, like lifelines'
    pseudo-inverse) and p-value ``P(chi2_1 > U) = erfc(sqrt(U / 2))``. If either group is
    empty the test is undefined: statistic 0 and p-value NaN, as lifelines returns.
    """
    counts_b = {day: (d, c) for day, d, c in table_b.counts()}
    merged: dict[int, tuple[int, int, int, int]] = {
        day: (d, c, *counts_b.pop(day, (0, 0))) for day, d, c in table_a.counts()
    }
    for day, (d, c) in counts_b.items():
        merged[day] = (0, 0, d, c)
    n_a = table_a.n
    n_b = table_b.n
    expected_terms: list[float] = []
    variance_terms: list[float] = []
    for day in sorted(merged):
        d_a, c_a, d_b, c_b = merged[day]
        d = d_a + d_b
        if d:
            n = n_a + n_b
            expected_terms.append(n_a * d / n)
            if n > 1:
                variance_terms.append(n_a * n_b * d * (n - d) / (n * n * (n - 1)))
        n_a -= d_a + c_a
        n_b -= d_b + c_b

    observed = table_a.n_events
    expected = math.fsum(expected_terms)
    variance = math.fsum(variance_terms)
    if table_a.n == 0 or table_b.n == 0:
        return LogRankResult(0.0, math.nan, observed, expected, variance)
    diff = observed - expected
    statistic = diff * diff / variance if variance > 0.0 else 0.0
    return LogRankResult(statistic, chi2_1_sf(statistic), observed, expected, variance)
