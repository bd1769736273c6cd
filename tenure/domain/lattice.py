"""Join-semilattice building blocks shared by the device and person states.

A projection state is built from grow-only sets, maps whose values are joined key by key,
and day spans joined by min/max. Joins of these are idempotent, commutative and
associative, so duplicated, reordered or replayed events cannot change a state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


_EMPTY: Mapping[object, object] = MappingProxyType({})
"""The empty read-only map, shared (nothing can change it)."""


def frozen_map(entries: Mapping[K, V] | None = None) -> Mapping[K, V]:
    """Wrap a mapping in a read-only view (a copy; equality ignores insertion order)."""
    if not entries:
        return _EMPTY  # type: ignore[return-value]
    return MappingProxyType(dict(entries))


def join_maps(maps: Iterable[Mapping[K, V]], join: Callable[[V, V], V]) -> Mapping[K, V]:
    """Union of maps; values present under the same key are combined with ``join``.

    When at most one of the maps has entries, that map is returned (read-only maps are
    never copied).
    """
    merged: dict[K, V] | None = None
    only: Mapping[K, V] | None = None
    for entries in maps:
        if not entries:
            continue
        if only is None:
            only = entries
            continue
        if merged is None:
            merged = dict(only)
        for key, value in entries.items():
            current = merged.get(key)
            merged[key] = value if current is None else join(current, value)
    if merged is not None:
        return MappingProxyType(merged)
    if only is None or not isinstance(only, MappingProxyType):
        return frozen_map(only)
    return only


@dataclass(frozen=True, slots=True, order=True)
class DaySpan:
    """The first and last moment of engagement observed on one UTC day."""

    first_at: datetime
    last_at: datetime

    @staticmethod
    def at(moment: datetime) -> DaySpan:
        """The span of a single moment."""
        return DaySpan(moment, moment)

    @property
    def day(self) -> date:
        """The UTC day the span lies in."""
        return self.first_at.date()

    @property
    def length_us(self) -> int:
        """Length of the span in microseconds (grows strictly when the span widens)."""
        delta = self.last_at - self.first_at
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

    def join(self, other: DaySpan) -> DaySpan:
        """The smallest span covering both spans."""
        return DaySpan(min(self.first_at, other.first_at), max(self.last_at, other.last_at))


def join_spans(left: DaySpan, right: DaySpan) -> DaySpan:
    """Join two day spans (for use with :func:`join_maps`)."""
    return left.join(right)


def earliest(left: datetime, right: datetime) -> datetime:
    """The earlier of two instants (a min-semilattice join)."""
    return min(left, right)
