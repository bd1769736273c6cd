"""Turn one person's timestamps into a survival observation ``(duration_days, observed)``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["DEFAULT_CHURN_AFTER_DAYS", "Observation", "tenure_observation", "time_to_event"]

#: Silence (days without engagement) after which a user counts as churned.
DEFAULT_CHURN_AFTER_DAYS = 30


@dataclass(frozen=True, slots=True)
class Observation:
    """One person's contribution to a life table."""

    duration_days: int
    observed: bool


def _whole_days(delta: timedelta) -> int:
    """Whole days in a non-negative interval (floor)."""
    return delta.days


def tenure_observation(
    first_engaged: datetime,
    last_engaged: datetime,
    as_of: datetime,
    churn_after_days: int = DEFAULT_CHURN_AFTER_DAYS,
) -> Observation:
    """Active-tenure observation of a user as of ``as_of``.

    Tenure starts at the first engagement; its duration is ``last - first`` in whole days.
    The user has churned (event observed) when silent for ``>= churn_after_days`` as of
    ``as_of``; otherwise they are censored at that *same* duration (not ``as_of - first``),
    so that a churn only flips the flag and never moves the duration.
    """
    if churn_after_days <= 0:
        raise ValueError("churn_after_days must be > 0")
    if not first_engaged <= last_engaged <= as_of:
        raise ValueError("need first_engaged <= last_engaged <= as_of")
    duration = _whole_days(last_engaged - first_engaged)
    churned = as_of - last_engaged >= timedelta(days=churn_after_days)
    return Observation(duration, churned)


def time_to_event(start: datetime, event_at: datetime | None, as_of: datetime) -> Observation:
    """Time from ``start`` to an event (activation, first payment, second paid order).

    Observed with duration ``event_at - start`` (whole days) if the event happened by
    ``as_of``; otherwise censored at ``as_of - start``: the person was watched that long
    without the event.
    """
    if start > as_of:
        raise ValueError("start must be <= as_of")
    if event_at is not None and event_at <= as_of:
        if event_at < start:
            raise ValueError("event_at must be >= start")
        return Observation(_whole_days(event_at - start), True)
    return Observation(_whole_days(as_of - start), False)
