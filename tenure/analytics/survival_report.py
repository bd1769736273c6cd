"""Pure JSON reports of the survival API from life tables and cohort rows.

Also the group selectors (``dimension:value``) the API and the gauges accept.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from tenure.analytics.cohorts import CohortRow
from tenure.analytics.curves import rate_within
from tenure.analytics.kaplan_meier import kaplan_meier
from tenure.analytics.lifetable import LifeTable
from tenure.analytics.logrank import logrank_test
from tenure.analytics.summaries import median_survival, restricted_mean_survival_time
from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.domain.tier import NO_TIER
from tenure.domain.view import DEFAULT_CONFIG, ENTRY_PATHS
from tenure.errors import TenureError

__all__ = [
    "DIMENSIONS",
    "SelectorError",
    "milestone_report",
    "parse_groups",
    "retention_report",
    "survival_report",
]

DIMENSIONS: tuple[str, ...] = (
    "entry", "segment", "stage", "level", "tier", "product", "cohort",
)  # fmt: skip
"""Dimensions of ``dimension:value`` selectors (plus the selector ``all``)."""

_CLOSED: dict[str, frozenset[str]] = {
    "entry": frozenset(ENTRY_PATHS),
    "segment": frozenset(s.value for s in Segment),
    "stage": frozenset(s.value for s in Stage),
    "level": frozenset(v.value for v in Level),
    "tier": frozenset({NO_TIER, *(name for name, _ in DEFAULT_CONFIG.tier_thresholds)}),
}


class SelectorError(TenureError, ValueError):
    """A group selector the API does not know."""


def _check(selector: str) -> str:
    if selector == "all":
        return selector
    dimension, sep, value = selector.partition(":")
    if not sep or dimension not in DIMENSIONS:
        raise SelectorError(
            f"unknown group selector {selector!r}: use 'all' or dimension:value with "
            f"dimension one of {', '.join(DIMENSIONS)}"
        )
    if not value:
        raise SelectorError(f"group selector {selector!r} has no value")
    if dimension in _CLOSED and value not in _CLOSED[dimension]:
        raise SelectorError(
            f"unknown {dimension} {value!r} in {selector!r}: one of "
            f"{', '.join(sorted(_CLOSED[dimension]))}"
        )
    if dimension == "cohort":
        try:
            monday = date.fromisoformat(value)
        except ValueError:
            raise SelectorError(f"cohort {value!r} is not a YYYY-MM-DD date") from None
        if monday.weekday() != 0:
            raise SelectorError(f"cohort {value!r} is not a Monday (cohorts are ISO weeks)")
    return selector


def parse_groups(text: str | None, default: tuple[str, ...] = ("all",)) -> list[str]:
    """Parse a comma-separated ``groups=`` value; raise :class:`SelectorError` if unknown."""
    if text is None or not text.strip():
        return list(default)
    groups = [_check(part.strip()) for part in text.split(",") if part.strip()]
    if len(set(groups)) != len(groups):
        raise SelectorError("a group selector is repeated")
    return groups


def _finite(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else value


def survival_report(
    group: str, table: LifeTable, horizon_days: int, alpha: float
) -> dict[str, Any]:
    """Kaplan-Meier curve with band and numbers at risk, median with CI and RMST of a group."""
    report: dict[str, Any] = {
        "group": group,
        "n": table.n,
        "events": table.n_events,
        "censored": table.n_censored,
        "median_days": None,
        "median_ci": [None, None],
        "rmst_days": None,
        "rmst_horizon_days": horizon_days,
        "curve": [],
    }
    if table.n == 0:
        return report
    curve = kaplan_meier(table, alpha)
    median = median_survival(curve)
    report["median_days"] = _finite(median.median)
    report["median_ci"] = [_finite(median.ci_low), _finite(median.ci_high)]
    report["rmst_days"] = restricted_mean_survival_time(curve, horizon_days)
    report["curve"] = [
        {"day": d, "survival": s, "ci_low": lo, "ci_high": hi, "at_risk": n}
        for d, s, lo, hi, n in zip(
            curve.days, curve.survival, curve.ci_low, curve.ci_high, curve.at_risk, strict=True
        )
    ]
    return report


def logrank_report(groups: list[str], tables: list[LifeTable]) -> dict[str, Any] | None:
    """Log-rank test between exactly two groups (``None`` otherwise)."""
    if len(groups) != 2:
        return None
    result = logrank_test(tables[0], tables[1])
    return {
        "groups": groups,
        "statistic": result.statistic,
        "p_value": None if math.isnan(result.p_value) else result.p_value,
    }


def milestone_report(
    group: str, table: LifeTable, window_days: int, alpha: float
) -> dict[str, Any]:
    """Cumulative share reaching a milestone by day (``1 - S``) and the window rate."""
    report: dict[str, Any] = {
        "group": group,
        "n": table.n,
        "count": table.n_events,
        "rate": None,
        "eligible": 0,
        "curve": [],
    }
    if table.n == 0:
        return report
    rate = rate_within(table, window_days)
    report["rate"] = rate.share
    report["eligible"] = rate.eligible
    curve = kaplan_meier(table, alpha)
    report["curve"] = [
        {"day": d, "share": 1.0 - s, "ci_low": 1.0 - hi, "ci_high": 1.0 - lo, "at_risk": n}
        for d, s, lo, hi, n in zip(
            curve.days, curve.survival, curve.ci_low, curve.ci_high, curve.at_risk, strict=True
        )
    ]
    return report


def retention_report(group: str, rows: list[CohortRow]) -> dict[str, Any]:
    """Weekly cohort rows as shares of the cohort size (index = week)."""
    return {
        "group": group,
        "cohorts": [
            {
                "cohort": row.cohort_start.isoformat(),
                "size": row.size,
                "on": list(row.on_share),
                "on_or_after": list(row.on_or_after_share),
                "on_count": list(row.on),
                "on_or_after_count": list(row.on_or_after),
            }
            for row in rows
        ],
    }
