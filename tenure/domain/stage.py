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
from collections.abc import Iterable, Sequence
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

    def __init__(self, days: Iterable[date], config: LifecycleConfig) -> None:
        self._days = sorted(days)
        self._window = config.inactivity_window_days
        self._at_risk = config.at_risk_days
        at_risk, window = timedelta(days=self._at_risk), timedelta(days=self._window)
        gap = min(self._at_risk, self._window)
        days = self._days
        comeback: list[date | None] = []
        latest: date | None = None
        turns: set[date] = set()
        for index, day in enumerate(days):
            if index:
                before = days[index - 1]
                silence = (day - before).days
                if silence >= gap:
                    turns.update((before + at_risk, before + window, day))
                if silence >= self._window:
                    latest = day
                    turns.add(day + window)
            comeback.append(latest)
        if days:
            first, last = days[0], days[-1]
            turns.update((first, first + window, last + at_risk, last + window))
        self._comeback = comeback
        self._turns = sorted(turns)
        """Days on which the stage may change: a superset of every day whose stage differs
        from the day before's. Between engagement days the stage moves only with the
        silence reaching R or W, the first day or a comeback ageing past W; an engagement
        day changes it only after a silence of at least R (a shorter gap leaves the silence
        under R and the comeback as it was). So: the first day, each engagement day after a
        gap of at least ``min(R, W)``, ``d + R`` and ``d + W`` for each day ``d`` followed
        by such a gap (or by none), and the first day and each comeback plus W: a few per
        gap, not three per engagement day."""

    @property
    def days(self) -> Sequence[date]:
        """The engagement days, sorted (the one sorted copy: do not mutate)."""
        return self._days

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

        The stage can only change on the days ``_turns`` lists, so walking back
        over those up to ``today`` finds the start of the current run exactly (the walk
        stops at the first listed day of another stage: the stage is constant between two
        listed days).
        """
        current = self.stage_on(today)
        if current is Stage.NONE:
            return None
        turns = self._turns
        end = bisect_right(turns, today)  # turns[0] is the first engagement day, <= today
        since = turns[end - 1]
        for index in range(end - 2, -1, -1):
            if self.stage_on(turns[index]) is not current:
                break
            since = turns[index]
        return since

    def began_by_engagement(self, day: date) -> bool:
        """Whether the stage of ``day`` is due to engagement on that day (not to time)."""
        return self.stage_on(day) is not self.stage_on(day, count_today=False)


_last_timeline: tuple[object, object, StageTimeline | None] = (None, None, None)
"""The last answer of :func:`timeline_of`, by the identity of its days and config."""


def timeline_of(days: Iterable[date], config: LifecycleConfig) -> StageTimeline:
    """``StageTimeline(days, config)``, built once for the same ``days`` object and config
    asked for again in a row (a person's view, then its schedule, read the timeline of one
    cached engagement-days mapping; callers must not mutate ``days``)."""
    global _last_timeline
    last = _last_timeline
    if last[0] is days and last[1] is config and last[2] is not None:
        return last[2]
    timeline = StageTimeline(days, config)
    _last_timeline = (days, config, timeline)
    return timeline
