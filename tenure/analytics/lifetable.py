"""Per-group life table: event and censoring counts keyed by integer duration day.

This is the aggregate the live system keeps per comparison group. One person contributes
one count: ``events[d]`` if they churned (the event was observed) after ``d`` days of tenure,
``censored[d]`` if they were still going when last observed at ``d`` days. When a person's
state changes the stream removes the old contribution and adds the new one, so every
mutation is O(1) and the Kaplan-Meier curve and the log-rank test are computed from these
counts alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = ["LifeTable", "LifeTableRow"]


@dataclass(frozen=True, slots=True)
class LifeTableRow:
    """Counts at one duration day."""

    day: int
    events: int
    censored: int


def _check_day(duration_days: int) -> None:
    if isinstance(duration_days, bool) or not isinstance(duration_days, int):
        raise TypeError(f"duration_days must be an int, got {type(duration_days).__name__}")
    if duration_days < 0:
        raise ValueError(f"duration_days must be >= 0, got {duration_days}")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


class LifeTable:
    """Integer counts of events and censorings per duration day for one group.

    ``add``/``remove`` are O(1). Counts never go negative: a removal that would make a count
    negative raises ``ValueError`` and leaves the table unchanged. Days whose counts drop to
    zero are forgotten, so :meth:`days` lists exactly the distinct observed durations.
    """

    __slots__ = ("_censored", "_events", "_n_censored", "_n_events")

    def __init__(self) -> None:
        self._events: dict[int, int] = {}
        self._censored: dict[int, int] = {}
        self._n_events = 0
        self._n_censored = 0

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_durations(cls, durations: Iterable[int], observed: Iterable[bool]) -> LifeTable:
        """Build a table from per-person durations (days) and event flags (True = churned)."""
        table = cls()
        durations = list(durations)
        flags = list(observed)
        if len(durations) != len(flags):
            raise ValueError("durations and observed must have the same length")
        for duration, flag in zip(durations, flags, strict=True):
            table.add(int(duration), bool(flag))
        return table

    @classmethod
    def from_dict(cls, counts: Mapping[int, tuple[int, int]]) -> LifeTable:
        """Rebuild a table from :meth:`to_dict` output (``day -> (events, censored)``)."""
        table = cls()
        for day, (events, censored) in counts.items():
            _check_day(day)
            _check_count("events", events)
            _check_count("censored", censored)
            if events:
                table._events[day] = events
                table._n_events += events
            if censored:
                table._censored[day] = censored
                table._n_censored += censored
        return table

    def to_dict(self) -> dict[int, tuple[int, int]]:
        """Serialisable form: ``{day: (events, censored)}`` for every day with a count."""
        return {row.day: (row.events, row.censored) for row in self.rows()}

    def copy(self) -> LifeTable:
        """Return an independent copy."""
        table = LifeTable()
        table._events = dict(self._events)
        table._censored = dict(self._censored)
        table._n_events = self._n_events
        table._n_censored = self._n_censored
        return table

    # -- mutation ------------------------------------------------------------------------
    def add(self, duration_days: int, observed: bool, weight: int = 1) -> None:
        """Add ``weight`` people with this duration; a negative weight removes people.

        Raises ``ValueError`` (leaving the table unchanged) if a count would go negative.
        """
        _check_day(duration_days)
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise TypeError(f"weight must be an int, got {type(weight).__name__}")
        counts = self._events if observed else self._censored
        new = counts.get(duration_days, 0) + weight
        if new < 0:
            kind = "events" if observed else "censorings"
            raise ValueError(
                f"cannot remove {-weight} {kind} at day {duration_days}: "
                f"only {new - weight} recorded"
            )
        if new == 0:
            counts.pop(duration_days, None)
        else:
            counts[duration_days] = new
        if observed:
            self._n_events += weight
        else:
            self._n_censored += weight

    def remove(self, duration_days: int, observed: bool, weight: int = 1) -> None:
        """Remove ``weight`` (> 0) people previously added with this duration and flag."""
        if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
            raise ValueError(f"weight must be a positive int, got {weight!r}")
        self.add(duration_days, observed, -weight)

    def replace(
        self,
        old: tuple[int, bool] | None,
        new: tuple[int, bool] | None,
    ) -> None:
        """Move one person from ``old`` to ``new`` ``(duration_days, observed)``, atomically.

        ``None`` means "no contribution" (a new person, or a person leaving the group).
        If the removal fails nothing is changed; if the addition fails the removal is undone.
        """
        if old is not None:
            self.remove(*old)
        if new is not None:
            try:
                self.add(*new)
            except (TypeError, ValueError):
                if old is not None:
                    self.add(*old)
                raise

    def merge(self, other: LifeTable) -> LifeTable:
        """Return a new table holding the counts of both tables (e.g. to pool groups)."""
        merged = self.copy()
        for day, count in other._events.items():
            merged._events[day] = merged._events.get(day, 0) + count
        for day, count in other._censored.items():
            merged._censored[day] = merged._censored.get(day, 0) + count
        merged._n_events += other._n_events
        merged._n_censored += other._n_censored
        return merged

    # -- reading -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of people in the table."""
        return self._n_events + self._n_censored

    @property
    def n_events(self) -> int:
        """Number of observed events (churned people)."""
        return self._n_events

    @property
    def n_censored(self) -> int:
        """Number of censored people (still going when last observed)."""
        return self._n_censored

    def events_at(self, day: int) -> int:
        """Events recorded at exactly ``day``."""
        return self._events.get(day, 0)

    def censored_at(self, day: int) -> int:
        """Censorings recorded at exactly ``day``."""
        return self._censored.get(day, 0)

    def days(self) -> list[int]:
        """Sorted distinct days with at least one event or censoring."""
        return sorted(self._events.keys() | self._censored.keys())

    def counts(self) -> list[tuple[int, int, int]]:
        """``(day, events, censored)`` tuples in increasing day order (fast path for estimators)."""
        events = self._events
        censored = self._censored
        return [(day, events.get(day, 0), censored.get(day, 0)) for day in self.days()]

    def rows(self) -> Iterator[LifeTableRow]:
        """Rows in increasing day order."""
        for day in self.days():
            yield LifeTableRow(day, self._events.get(day, 0), self._censored.get(day, 0))

    def __len__(self) -> int:
        return self.n

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LifeTable):
            return NotImplemented
        return self._events == other._events and self._censored == other._censored

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LifeTable(n={self.n}, events={self._n_events}, censored={self._n_censored})"
