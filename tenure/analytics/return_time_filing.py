"""How one person's engagement days are filed into the return-time counts (pure).

The churn model's counts in Postgres (:mod:`tenure.storage.churn_model`) move a person's
filing from what was last added to what their days say now with :func:`filing_change`; the
derive stage queues each derived person's days (:func:`days_of`), the rebuild every
person's (:func:`histories_of`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tenure.analytics.return_times import ALL, PersonGaps, gaps_from, person_gaps
from tenure.domain.activity import engagement_days
from tenure.domain.person import PersonState

__all__ = ["Filing", "Person", "days_of", "filed", "filing_change", "histories_of"]

Person = tuple[str, Iterable[date] | None, str]
"""(person id, engagement days or ``None`` to forget the person, group)."""


def _filing_delta(
    days: Iterable[date], group: str, sign: int, returns: Counter[Any], opened: Counter[Any]
) -> None:
    _file(person_gaps(days, group), sign, returns, opened)


def _file(gaps: PersonGaps, sign: int, returns: Counter[Any], opened: Counter[Any]) -> None:
    for bucket, length in gaps.closed:
        returns[(bucket.key, length)] += sign
    if gaps.open_bucket is not None and gaps.open_since is not None:
        opened[(gaps.open_bucket.key, gaps.open_since)] += sign


def _common_prefix(a: Sequence[date], b: Sequence[date]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n  # the usual case: days were only added after the last ones
    return next(i for i in range(n) if a[i] != b[i])


def filing_change(
    before: tuple[str, Sequence[date]] | None,
    after: tuple[str, Sequence[date]] | None,
    returns: Counter[Any],
    opened: Counter[Any],
) -> None:
    """Add to the counts the change of one person's filing from ``before`` to ``after``
    (``(group, days)`` or ``None``): the same as removing the whole old
    filing and adding the new one, but only the gaps after the days they share are
    filed again."""
    if before is not None and after is not None and before[0] == after[0]:
        old, new = sorted(set(before[1])), sorted(set(after[1]))
        first = max(0, _common_prefix(old, new) - 1)
        _file(gaps_from(old, first, before[0]), -1, returns, opened)
        _file(gaps_from(new, first, after[0]), 1, returns, opened)
        return
    if before is not None:
        _filing_delta(before[1], before[0], -1, returns, opened)
    if after is not None:
        _filing_delta(after[1], after[0], 1, returns, opened)


@dataclass(slots=True)
class Filing:
    """Return-time counts of some persons filed from nothing: closed gaps by
    ``(bucket, length)`` and open gaps by ``(bucket, since)``. Filings of different persons
    add up (a replay's parts are filed apart, then summed)."""

    returns: Counter[Any] = field(default_factory=Counter)
    opened: Counter[Any] = field(default_factory=Counter)

    def add(self, other: Filing) -> None:
        """Add ``other``'s counts (of other persons) to these."""
        self.returns.update(other.returns)
        self.opened.update(other.opened)


def filed(people: Iterable[tuple[str, Iterable[date]]], group: str = ALL) -> Filing:
    """The counts of ``people`` (each once, with their engagement days) filed in ``group``
    from nothing: what :func:`filing_change` adds for each when nothing was filed before."""
    filing = Filing()
    for _, days in people:
        unique = sorted(set(days))
        if unique:
            filing_change(None, (group, unique), filing.returns, filing.opened)
    return filing


def histories_of(persons: Mapping[str, PersonState], as_of: datetime) -> Iterator[Person]:
    """Every non-erased person's engagement days known at ``as_of`` (for :func:`rebuild`)."""
    for person_id, state in sorted(persons.items()):
        if not state.erased:
            yield person_id, list(engagement_days(state, as_of)), ALL


def days_of(state: PersonState, as_of: datetime) -> Sequence[date] | None:
    """What to queue for a derived person: their days, or ``None`` when erased."""
    return None if state.erased else list(engagement_days(state, as_of))
