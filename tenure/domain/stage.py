"""Lifecycle stage by event time, defined on the active-days set.

With D the sorted engagement days up to ``as_of``, ``today`` the UTC day of ``as_of``,
``silence = today - max(D)`` in days, W the inactivity window and R = ceil(W/2) the
at-risk threshold, the first matching rule wins:

1. ``none``: D is empty;
2. ``churned``: silence >= W;
3. ``at_risk``: silence >= R;
4. ``new``: today - min(D) < W (first engagement within W);
5. ``resurrected``: the latest comeback day (a day d in D whose previous day in D is at
   least W days earlier) exists and today - comeback < W;
6. ``active``: otherwise.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum

from tenure.domain.config import LifecycleConfig


class Stage(StrEnum):
    """Where a person is in their lifecycle at an instant."""

    NONE = "none"
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"
    RESURRECTED = "resurrected"


class StageTimeline:
    """Stage of one person for any day, from their sorted engagement days."""

    def __init__(self, days: Sequence[date], config: LifecycleConfig) -> None:
        self._days = sorted(days)
        self._window = config.inactivity_window_days
        self._at_risk = config.at_risk_days
        comeback: list[date | None] = []
        latest: date | None = None
        for index, day in enumerate(self._days):
            if index and (day - self._days[index - 1]).days >= self._window:
                latest = day
            comeback.append(latest)
        self._comeback = comeback

    def stage_on(self, today: date, *, count_today: bool = True) -> Stage:
        """The stage on ``today`` counting engagement days up to (and with) ``today``."""
        known = (bisect_right if count_today else bisect_left)(self._days, today)
        if not known:
            return Stage.NONE
        silence = (today - self._days[known - 1]).days
        if silence >= self._window:
            return Stage.CHURNED
        if silence >= self._at_risk:
            return Stage.AT_RISK
        if (today - self._days[0]).days < self._window:
            return Stage.NEW
        comeback = self._comeback[known - 1]
        if comeback is not None and (today - comeback).days < self._window:
            return Stage.RESURRECTED
        return Stage.ACTIVE

    def stage_since(self, today: date) -> date | None:
        """The day the stage current on ``today`` began (``None`` for stage ``none``).

        The stage can only change on an engagement day d or on d + R or d + W, so walking
        back over those candidate days finds the start of the current run exactly.
        """
        current = self.stage_on(today)
        if current is Stage.NONE:
            return None
        offsets = (timedelta(0), timedelta(days=self._at_risk), timedelta(days=self._window))
        candidates = sorted({d + o for d in self._days for o in offsets if d + o <= today})
        since = candidates[-1]
        for candidate in reversed(candidates[:-1]):
            if self.stage_on(candidate) is not current:
                break
            since = candidate
        return since

    def began_by_engagement(self, day: date) -> bool:
        """Whether the stage of ``day`` is due to engagement on that day (not to time)."""
        return self.stage_on(day) is not self.stage_on(day, count_today=False)
