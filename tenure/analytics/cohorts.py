"""Weekly cohort retention matrices kept as incremental aggregates.

A person belongs to the cohort of the week (Monday) of their first engagement. Week index
``k`` is ``(day - cohort_start).days // 7``. For each cohort we keep:

* ``size``: people in the cohort;
* ``on[k]``: people engaged in week ``k``;
* ``last[k]``: people whose last engaged week is ``k``; "on or after week ``k``" (engaged in
  week ``k`` or any later week) is the suffix sum ``sum_{m >= k} last[m]``.

Adding or removing one person costs O(number of their active weeks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["CohortRetention", "CohortRow", "cohort_week_start", "week_index"]


def cohort_week_start(day: date) -> date:
    """Monday of the ISO week containing ``day`` (pass ``dt.date()`` for a datetime)."""
    return day - timedelta(days=day.weekday())


def week_index(cohort_start: date, day: date) -> int:
    """Week number of ``day`` since ``cohort_start`` (0 = the cohort's own week)."""
    delta = (day - cohort_start).days
    if delta < 0:
        raise ValueError("day is before the cohort start")
    return delta // 7


@dataclass(frozen=True, slots=True)
class CohortRow:
    """One cohort's retention row for weeks ``0 .. len(on) - 1``."""

    cohort_start: date
    size: int
    on: tuple[int, ...]
    on_or_after: tuple[int, ...]

    @property
    def on_share(self) -> tuple[float, ...]:
        """``on[k] / size`` (0.0 for an empty cohort)."""
        return tuple(c / self.size if self.size else 0.0 for c in self.on)

    @property
    def on_or_after_share(self) -> tuple[float, ...]:
        """``on_or_after[k] / size`` (0.0 for an empty cohort)."""
        return tuple(c / self.size if self.size else 0.0 for c in self.on_or_after)


class _Cohort:
    __slots__ = ("last", "on", "size")

    def __init__(self) -> None:
        self.size = 0
        self.on: dict[int, int] = {}
        self.last: dict[int, int] = {}


def _bump(counts: dict[int, int], key: int, delta: int) -> None:
    new = counts.get(key, 0) + delta
    if new:
        counts[key] = new
    else:
        del counts[key]


class CohortRetention:
    """Weekly cohort retention counts with O(active weeks) add/remove of one person."""

    __slots__ = ("_cohorts",)

    def __init__(self) -> None:
        self._cohorts: dict[date, _Cohort] = {}

    def add(self, cohort_start: date, active_weeks: Iterable[int], weight: int = 1) -> None:
        """Add ``weight`` people of ``cohort_start`` engaged in ``active_weeks``.

        A negative weight removes them; a removal that would drive any count negative raises
        ``ValueError`` and changes nothing.
        """
        weeks = frozenset(active_weeks)
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weeks):
            raise ValueError("active week indices must be ints >= 0")
        if weight == 0:
            return
        cohort = self._cohorts.get(cohort_start)
        if weight < 0:
            self._check_removable(cohort, weeks, -weight)
        if cohort is None:
            cohort = self._cohorts[cohort_start] = _Cohort()
        cohort.size += weight
        for w in weeks:
            _bump(cohort.on, w, weight)
        if weeks:
            _bump(cohort.last, max(weeks), weight)
        if cohort.size == 0:
            del self._cohorts[cohort_start]

    @staticmethod
    def _check_removable(cohort: _Cohort | None, weeks: frozenset[int], count: int) -> None:
        if cohort is None or cohort.size < count:
            raise ValueError("removing more people than the cohort holds")
        if any(cohort.on.get(w, 0) < count for w in weeks):
            raise ValueError("removing an engagement week that was never added")
        if weeks and cohort.last.get(max(weeks), 0) < count:
            raise ValueError("removing a last-active week that was never added")

    def remove(self, cohort_start: date, active_weeks: Iterable[int], weight: int = 1) -> None:
        """Remove ``weight`` (> 0) people previously added with exactly these weeks."""
        if weight <= 0:
            raise ValueError("weight must be > 0")
        self.add(cohort_start, active_weeks, -weight)

    def replace(
        self, cohort_start: date, old_weeks: Iterable[int], new_weeks: Iterable[int]
    ) -> None:
        """Replace one person's active-week set (e.g. after a new engagement)."""
        self.remove(cohort_start, old_weeks)
        self.add(cohort_start, new_weeks)

    def cohorts(self) -> list[date]:
        """Cohort start dates, oldest first."""
        return sorted(self._cohorts)

    def size(self, cohort_start: date) -> int:
        """People in the cohort."""
        cohort = self._cohorts.get(cohort_start)
        return cohort.size if cohort else 0

    def on(self, cohort_start: date, week: int) -> int:
        """People of the cohort engaged in week ``week``."""
        cohort = self._cohorts.get(cohort_start)
        return cohort.on.get(week, 0) if cohort else 0

    def on_or_after(self, cohort_start: date, week: int) -> int:
        """People of the cohort engaged in week ``week`` or any later week."""
        cohort = self._cohorts.get(cohort_start)
        if cohort is None:
            return 0
        return sum(c for m, c in cohort.last.items() if m >= week)

    def row(self, cohort_start: date, weeks: int | None = None) -> CohortRow:
        """Retention row for weeks ``0 .. weeks - 1`` (default: through the last active week)."""
        cohort = self._cohorts.get(cohort_start) or _Cohort()
        if weeks is None:
            weeks = max(cohort.on, default=-1) + 1
        on = tuple(cohort.on.get(k, 0) for k in range(weeks))
        after = [0] * weeks
        running = sum(c for m, c in cohort.last.items() if m >= weeks)
        for k in range(weeks - 1, -1, -1):
            running += cohort.last.get(k, 0)
            after[k] = running
        return CohortRow(cohort_start, cohort.size, on, tuple(after))

    def matrix(self, as_of: date | None = None) -> list[CohortRow]:
        """All cohort rows, oldest first.

        With ``as_of``, each row covers the weeks that have started by ``as_of``
        (``(as_of - cohort_start).days // 7 + 1``; the last one may be partial), so young
        cohorts do not show zeros for weeks that have not happened yet.
        """
        rows = []
        for start in self.cohorts():
            weeks = None if as_of is None else max(0, (as_of - start).days // 7 + 1)
            rows.append(self.row(start, weeks))
        return rows
