"""Time-to-X curves (activation, conversion, repeat purchase) and window rates.

These are time-to-event problems with right censoring, so they reuse
:class:`~tenure.analytics.lifetable.LifeTable` and :func:`kaplan_meier`. The business reads
them as cumulative incidence ``F(t) = 1 - S(t)``: the share who have done X within ``t``
days of the start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tenure.analytics.kaplan_meier import KaplanMeierCurve
from tenure.analytics.lifetable import LifeTable
from tenure.analytics.observation import Observation

__all__ = [
    "Incidence",
    "TimeToEventKind",
    "WindowRate",
    "cumulative_incidence",
    "life_table_from_observations",
    "rate_within",
]


class TimeToEventKind(StrEnum):
    """The time-to-X curves the platform maintains: start event -> target event."""

    ACTIVATION = "activation"  # purchase -> device activation
    CONVERSION = "conversion"  # first engagement as a user -> first payment
    REPEAT_PURCHASE = "repeat_purchase"  # first paid order -> second paid order


@dataclass(frozen=True, slots=True)
class Incidence:
    """Cumulative incidence ``1 - S(day)`` with its band ``(1 - high, 1 - low)``."""

    day: float
    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class WindowRate:
    """Crude share who did X within ``window_days``, among people watched that long.

    ``eligible`` excludes people censored before ``window_days`` (their window has not
    elapsed yet); ``share`` is ``None`` when nobody is eligible.
    """

    window_days: int
    converted: int
    eligible: int
    share: float | None


def life_table_from_observations(observations: Iterable[Observation]) -> LifeTable:
    """Build a life table from per-person observations."""
    table = LifeTable()
    for obs in observations:
        table.add(obs.duration_days, obs.observed)
    return table


def cumulative_incidence(curve: KaplanMeierCurve, day: float) -> Incidence:
    """Share who had the event by ``day`` (KM-based, accounts for censoring)."""
    i = curve.index_at(day)
    return Incidence(
        day=day,
        value=1.0 - curve.survival[i],
        ci_low=1.0 - curve.ci_high[i],
        ci_high=1.0 - curve.ci_low[i],
    )


def rate_within(table: LifeTable, window_days: int) -> WindowRate:
    """Crude rate: events at ``<= window_days`` over people observed for the full window.

    A person is eligible if they had the event (at any time) or were censored at
    ``>= window_days``. O(distinct days).
    """
    if window_days < 0:
        raise ValueError("window_days must be >= 0")
    converted = 0
    too_recent = 0
    for row in table.rows():
        if row.day <= window_days:
            converted += row.events
        if row.day < window_days:
            too_recent += row.censored
    eligible = table.n - too_recent
    share = converted / eligible if eligible else None
    return WindowRate(window_days, converted, eligible, share)
