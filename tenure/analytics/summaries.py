"""Summaries of a Kaplan-Meier curve: quantile/median times, median CI and RMST."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from tenure.analytics.kaplan_meier import KaplanMeierCurve

__all__ = [
    "MedianSurvival",
    "median_survival",
    "qth_survival_time",
    "restricted_mean_survival_time",
]


@dataclass(frozen=True, slots=True)
class MedianSurvival:
    """Median survival time and its confidence interval (``inf`` = not reached)."""

    median: float
    ci_low: float
    ci_high: float


def _first_at_or_below(days: Sequence[int], values: Sequence[float], q: float) -> float:
    """lifelines ``qth_survival_time(q, series)`` on a curve given as columns.

    ``inf`` if the last value is still above ``q``; otherwise the day found by a binary
    search for ``-q`` in ``-values`` (numpy ``searchsorted`` side='left', which Python's
    ``bisect_left`` reproduces step for step). For a non-increasing curve this is the first
    day with value ``<= q``; CI curves are not always monotone, and we follow lifelines'
    search exactly there too.
    """
    if values[-1] > q:
        return math.inf
    negated = [-v for v in values]
    return float(days[bisect.bisect_left(negated, -q)])


def qth_survival_time(curve: KaplanMeierCurve, q: float) -> float:
    """First day with ``S(day) <= q`` (``inf`` if the curve never gets there)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    return _first_at_or_below(curve.days, curve.survival, q)


def median_survival(curve: KaplanMeierCurve) -> MedianSurvival:
    """Median survival time with its CI, as lifelines computes them.

    ``median`` = ``kmf.median_survival_time_`` = first day with ``S <= 0.5``.
    ``ci_low``/``ci_high`` = ``median_survival_times(kmf.confidence_interval_)``: the median
    of the lower band curve and of the upper band curve respectively.
    """
    return MedianSurvival(
        median=_first_at_or_below(curve.days, curve.survival, 0.5),
        ci_low=_first_at_or_below(curve.days, curve.ci_low, 0.5),
        ci_high=_first_at_or_below(curve.days, curve.ci_high, 0.5),
    )


def restricted_mean_survival_time(curve: KaplanMeierCurve, horizon: float) -> float:
    """RMST up to ``horizon`` days: the exact integral of the KM step function on [0, horizon].

    Equals ``lifelines.utils.restricted_mean_survival_time(kmf, t=horizon)``:
    ``sum (t[i+1] - t[i]) * S(t[i])`` over the timeline days ``<= horizon`` followed by
    ``horizon`` itself. ``horizon = inf`` gives ``inf`` unless the curve reaches 0 (then the
    mean survival time). lifelines reports no variance for the RMST; neither do we.
    """
    if math.isnan(horizon) or horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    end = bisect.bisect_right(curve.days, horizon)
    terms: list[float] = []
    for i in range(end):
        s = curve.survival[i]
        nxt = curve.days[i + 1] if i + 1 < end else horizon
        width = nxt - curve.days[i]
        if s == 0.0 or width == 0:
            continue
        terms.append(width * s)
    return math.fsum(terms)
