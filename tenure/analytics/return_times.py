"""Return-time life tables: the churn probability learned from the gaps between engagement days.

A person's engagement days ``d0 < d1 < ... < dn`` make closed gaps ``d(k+1) - dk`` (each an
observed *return time*) and one open gap that started on ``dn``: at ``as_of`` it has lasted
``s = as_of - dn`` days without a return (censored at ``s``). Each gap is filed, at the moment
it opened, under a :class:`ReturnBucket`: the person's recent rhythm (the median of their last
:data:`RECENT_GAPS` closed gaps, in log2 bins), how many gaps they had closed (experience) and
their group (entry path and product, or anything the caller groups by).

Per bucket, a Kaplan-Meier estimate over gap lengths gives ``S(t) = P(gap > t)``, and

    P(no engagement in the next W days | silent s days) = S(s + W) / S(s)
                                                       = prod_{u = s+1 .. s+W} (1 - h(u))

Thin buckets borrow strength from their parent (group -> all groups -> rhythm only -> all
gaps): the hazard at age ``u`` is ``(d(u) + k * h_parent(u)) / (n(u) + k)`` with ``d`` returns
and ``n`` gaps at risk at age ``u`` in the bucket and ``k`` the shrinkage strength. With
``n = 0`` it is the parent's hazard; with ``k = 0`` (or ``n`` large) the bucket's own.

Pure: :class:`ReturnTimeCounts` is a commutative group of counts (add a person's gaps, remove
them again: no change), so it can be kept live from the log like the survival aggregates, and
``as_of`` only enters when the open gaps' ages are read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import TypeVar

from tenure.domain.return_bucket import (
    ALL,
    EXPERIENCES,
    RECENT_GAPS,
    RHYTHMS,
    ROOT,
    ReturnBucket,
    bucket_after,
    experience_of,
    rhythm_of,
)

__all__ = [
    "ALL",
    "DEFAULT_SHRINKAGE",
    "EXPERIENCES",
    "MAX_AGE_DAYS",
    "RECENT_GAPS",
    "RHYTHMS",
    "ROOT",
    "PersonGaps",
    "ReturnBucket",
    "ReturnTimeCounts",
    "ReturnTimeModel",
    "bucket_after",
    "experience_of",
    "fit",
    "person_gaps",
    "rhythm_of",
]

MAX_AGE_DAYS = 400
"""Gap ages beyond this count as censored at this age (the curves stop here)."""
DEFAULT_SHRINKAGE = 20.0
"""Prior strength ``k``: how many gaps at risk a bucket needs to outweigh its parent."""


@dataclass(frozen=True, slots=True)
class PersonGaps:
    """One person's gaps as the model files them: closed ones and the open one."""

    closed: tuple[tuple[ReturnBucket, int], ...]
    """``(bucket when it opened, length in days)`` of every closed gap."""
    open_bucket: ReturnBucket | None
    """The bucket of the open gap (``None`` for a person with no engagement)."""
    open_since: date | None
    """The last engagement day: the open gap's start."""


def person_gaps(days: Iterable[date], group: str = ALL) -> PersonGaps:
    """File a person's gaps from their engagement days (any order, duplicates ignored)."""
    return gaps_from(sorted(set(days)), 0, group)


def gaps_from(ordered: Sequence[date], first: int, group: str = ALL) -> PersonGaps:
    """:func:`person_gaps` of sorted, distinct days, keeping only the closed gaps from the
    ``first`` on (gap ``k`` is filed by the gaps before it only, so two day lists sharing
    their first ``k + 2`` days file their first ``k + 1`` gaps alike)."""
    if not ordered:
        return PersonGaps((), None, None)
    lengths = [(later - earlier).days for earlier, later in pairwise(ordered)]
    closed = tuple(
        (ReturnBucket(rhythm_of(lengths[max(0, k - RECENT_GAPS) : k]), experience_of(k), group),
         lengths[k])
        for k in range(first, len(lengths))
    )  # fmt: skip
    return PersonGaps(closed, bucket_after(lengths, group), ordered[-1])


@dataclass(slots=True)
class ReturnTimeCounts:
    """Gap counts per bucket: returns by gap length, open gaps by their start day.

    Signed counts: :meth:`add` with ``sign=-1`` removes a person's earlier contribution, so
    the counts can follow the log incrementally.
    """

    returns: dict[ReturnBucket, Counter[int]] = field(default_factory=dict)
    open_since: dict[ReturnBucket, Counter[date]] = field(default_factory=dict)

    def add(self, gaps: PersonGaps, sign: int = 1) -> None:
        """Add (``sign=1``) or remove (``sign=-1``) one person's gaps."""
        for bucket, length in gaps.closed:
            _bump(self.returns, bucket, length, sign)
        if gaps.open_bucket is not None and gaps.open_since is not None:
            _bump(self.open_since, gaps.open_bucket, gaps.open_since, sign)

    @classmethod
    def of(cls, people: Iterable[PersonGaps]) -> ReturnTimeCounts:
        """The counts of many people."""
        counts = cls()
        for gaps in people:
            counts.add(gaps)
        return counts


_Key = TypeVar("_Key", int, date)


def _bump(
    table: dict[ReturnBucket, Counter[_Key]], bucket: ReturnBucket, key: _Key, by: int
) -> None:
    """Add ``by`` to one count, dropping counts (and buckets) that reach zero."""
    counter = table.setdefault(bucket, Counter())
    counter[key] += by
    if counter[key] == 0:
        del counter[key]
        if not counter:
            del table[bucket]


@dataclass(frozen=True, slots=True)
class ReturnTimeModel:
    """Shrunk hazards of return per bucket key and age (index ``u`` = gap age in days)."""

    hazards: Mapping[str, tuple[float, ...]]
    at_risk: Mapping[str, tuple[float, ...]]
    """Gaps at risk per bucket key and age (how much the bucket's own data weighs)."""
    _curves: dict[tuple[str, int], list[float]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Cache of :meth:`silent_probability` per (bucket key, window), silence 0..max."""

    def hazard(self, bucket: ReturnBucket) -> tuple[tuple[float, ...], str]:
        """The hazards of the most specific key of ``bucket`` the model knows, and that key."""
        for key in bucket.lineage():
            if key in self.hazards:
                return self.hazards[key], key
        return _NO_RETURN, ALL

    def conditional_silence(self, bucket: ReturnBucket, silence: int, window: int) -> float:
        """``S(s + W) / S(s)``: P(no return in ages ``s+1 .. s+W`` | no return by age ``s``)."""
        if silence < 0 or window < 0:
            raise ValueError("silence and window must not be negative")
        hazards, _ = self.hazard(bucket)
        survive = 1.0
        for age in range(silence + 1, min(silence + window, MAX_AGE_DAYS) + 1):
            survive *= 1.0 - hazards[age]
        return min(1.0, max(0.0, survive))

    def silent_probability(self, bucket: ReturnBucket, silence: int, window: int) -> float:
        """P(no engagement in the next ``window`` days | silent ``silence`` days so far).

        :meth:`conditional_silence`, made non-decreasing in the silence (the largest value
        at any silence up to ``silence``): a longer silence never lowers the risk, which a
        rhythm's peak return day (a weekly user on day 6) would otherwise do briefly.
        """
        if silence < 0 or window < 0:
            raise ValueError("silence and window must not be negative")
        hazards, key = self.hazard(bucket)
        curve = self._curves.get((key, window))
        if curve is None:
            survival = [1.0 - h for h in hazards]
            curve = []
            highest = 0.0
            for s in range(MAX_AGE_DAYS + 1):
                # conditional_silence: the same factors multiplied in the same order
                survive = math.prod(survival[s + 1 : min(s + window, MAX_AGE_DAYS) + 1])
                highest = max(highest, min(1.0, max(0.0, survive)))
                curve.append(highest)
            self._curves[(key, window)] = curve
        return curve[min(silence, MAX_AGE_DAYS)]


_NO_RETURN: tuple[float, ...] = (0.0,) * (MAX_AGE_DAYS + 1)


def _table(
    returns: Counter[int], open_since: Counter[date], as_of: date
) -> tuple[list[float], list[float]]:
    """Returns ``d[u]`` and gaps at risk ``n[u]`` for ages ``u = 0..MAX_AGE_DAYS``."""
    events = [0.0] * (MAX_AGE_DAYS + 2)
    leaving = [0.0] * (MAX_AGE_DAYS + 2)  # gaps that stop being at risk after age u
    for length, count in returns.items():
        if length > MAX_AGE_DAYS:
            leaving[MAX_AGE_DAYS] += count
        else:
            events[length] += count
            leaving[length] += count
    for start, count in open_since.items():
        age = min((as_of - start).days, MAX_AGE_DAYS)
        if age >= 0:
            leaving[age] += count
    at_risk = [0.0] * (MAX_AGE_DAYS + 2)
    remaining = sum(leaving)
    for age in range(MAX_AGE_DAYS + 1):
        at_risk[age] = remaining
        remaining -= leaving[age]
    return events[: MAX_AGE_DAYS + 1], at_risk[: MAX_AGE_DAYS + 1]


def fit(
    counts: ReturnTimeCounts, as_of: date, shrinkage: float = DEFAULT_SHRINKAGE
) -> ReturnTimeModel:
    """The model of ``counts`` with the open gaps' ages read at ``as_of``.

    A gap of age ``u`` is at risk of returning at age ``u`` if it is closed with length at
    least ``u`` or open with age at least ``u`` (lifelines' convention: censored at their
    own age, still at risk there). Open gaps that start after ``as_of`` are ignored.
    """
    if shrinkage < 0:
        raise ValueError("shrinkage must not be negative")
    tables: dict[str, tuple[list[float], list[float]]] = {}
    for bucket in set(counts.returns) | set(counts.open_since):
        events, at_risk = _table(
            counts.returns.get(bucket, Counter()), counts.open_since.get(bucket, Counter()), as_of
        )
        for key in bucket.lineage():
            if key in tables:
                old_events, old_at_risk = tables[key]
                tables[key] = (
                    [a + b for a, b in zip(old_events, events, strict=True)],
                    [a + b for a, b in zip(old_at_risk, at_risk, strict=True)],
                )
            else:
                tables[key] = (list(events), list(at_risk))
    hazards: dict[str, tuple[float, ...]] = {}
    # Parents first: a key's parent has fewer specific parts (more "*").
    for key in sorted(tables, key=lambda k: -k.count(ALL)):
        events, at_risk = tables[key]
        parent = _parent_hazards(key, hazards)
        k = 0.0 if key == ROOT else shrinkage  # the root has nothing to borrow from
        hazards[key] = tuple(
            _shrunk(events[u], at_risk[u], parent[u], k) for u in range(MAX_AGE_DAYS + 1)
        )
    return ReturnTimeModel(hazards, {key: tuple(table[1]) for key, table in tables.items()})


def _parent_hazards(key: str, known: Mapping[str, tuple[float, ...]]) -> tuple[float, ...]:
    group, rhythm, experience = key.split("/")
    if group != ALL:
        parent = f"{ALL}/{rhythm}/{experience}"
    elif experience != ALL:
        parent = f"{ALL}/{rhythm}/{ALL}"
    elif rhythm != ALL:
        parent = f"{ALL}/{ALL}/{ALL}"
    else:
        return _NO_RETURN
    return known.get(parent, _NO_RETURN)


def _shrunk(events: float, at_risk: float, parent: float, shrinkage: float) -> float:
    """``(d + k * h_parent) / (n + k)``; the raw hazard when ``k = 0``; 0 with no data."""
    denominator = at_risk + shrinkage
    if denominator <= 0:
        return parent
    value = (events + shrinkage * parent) / denominator
    return min(1.0, max(0.0, value)) if not math.isnan(value) else parent
