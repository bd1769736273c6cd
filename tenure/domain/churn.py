"""Churn risk: how unusual a person's current silence is, in [0, 1], with its inputs.

With ``s`` the silence in days (as-of day minus last engagement day), ``g`` the person's
usual gap (median of the gaps between consecutive engagement days; the configured default
when there are fewer than two days), ``r = s / max(g, 1)``, ``k`` the steepness, ``r0``
the midpoint ratio and ``W`` the inactivity window::

    risk = round(max(1 / (1 + exp(-k * (r - r0))), min(1, s / W)), 4)

The first term says "silent for much longer than this person usually is"; the second
makes the risk reach 1 exactly when the person churns. A person with no engagement has
risk 0: there is no relationship to lose yet.

The calibrated churn probability (issue 15) is not computed here: it needs the return-time
model learned from everyone's history (``tenure/analytics/return_times.py``). The view
carries its inputs instead, ``silence_days`` and ``bucket`` (the return-time bucket of the
person's open gap), and a reader computes ``P(no engagement in the next W days)`` from the
model at read time (``docs/lifecycle.md``, "Churn probability").
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from tenure.analytics.return_times import bucket_after
from tenure.domain.config import LifecycleConfig


@dataclass(frozen=True, slots=True)
class ChurnRisk:
    """A churn-risk score together with the numbers it was computed from."""

    score: float
    silence_days: int | None
    usual_gap_days: float | None
    ratio: float | None
    bucket: str | None = None
    """The return-time bucket of the open gap (``group/rhythm/experience``), the input of
    the churn probability; ``None`` without engagement."""


NO_RISK = ChurnRisk(0.0, None, None, None)
"""The risk of a person with no engagement."""


def usual_gap_days(days: Sequence[date], config: LifecycleConfig) -> float:
    """Median gap in days between consecutive engagement days (or the configured default)."""
    ordered = sorted(days)
    gaps = [(later - earlier).days for earlier, later in pairwise(ordered)]
    return float(statistics.median(gaps)) if gaps else config.churn_default_usual_gap_days


def churn_risk(days: Sequence[date], today: date, config: LifecycleConfig) -> ChurnRisk:
    """Churn risk on ``today`` from the engagement days up to ``today``."""
    known = [day for day in days if day <= today]
    if not known:
        return NO_RISK
    ordered = sorted(set(known))
    bucket = bucket_after([(b - a).days for a, b in pairwise(ordered)]).key
    return churn_risk_at(max(known), usual_gap_days(known, config), bucket, today, config)


def churn_risk_at(
    last_day: date, usual_gap: float, bucket: str | None, today: date, config: LifecycleConfig
) -> ChurnRisk:
    """Churn risk on ``today`` of a person last engaged on ``last_day`` with the given usual
    gap and return-time bucket (neither changes without new facts).

    The only part of the view that changes every day with no new facts: the read model
    stores it as of the row's ``as_of`` and readers age it to a later day with this
    function (``docs/projection.md``, "Time").
    """
    silence = (today - last_day).days
    ratio = silence / max(usual_gap, 1.0)
    exponent = -config.churn_steepness * (ratio - config.churn_midpoint_ratio)
    logistic = 1.0 / (1.0 + math.exp(min(exponent, 700.0)))
    closeness = min(1.0, silence / config.inactivity_window_days)
    return ChurnRisk(
        round(max(logistic, closeness), 4), silence, usual_gap, round(ratio, 4), bucket
    )
