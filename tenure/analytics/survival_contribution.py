"""One person's contribution to the live survival aggregates, and the delta between two.

Pure: a ``persons`` row (as a mapping of column -> value) becomes a :class:`Contribution`;
a contribution becomes a multiset of aggregate *cells* (table, key) with count 1 each; a
state change is ``cells(new) - cells(old)``, applied as signed increments. Adding and then
removing a contribution is no change, and applying deltas in any order gives the same
totals (counts form a commutative group).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "ACTIVATION",
    "CONVERSION",
    "MILESTONES",
    "REPEAT",
    "Cell",
    "Contribution",
    "Milestone",
    "apply_delta",
    "cells",
    "contribution_of",
    "delta",
    "group_keys",
    "total",
]

ACTIVATION = "activation"
CONVERSION = "conversion"
REPEAT = "repeat"
MILESTONES: tuple[str, ...] = (ACTIVATION, CONVERSION, REPEAT)
"""Time-to-milestone kinds: buyers -> activation, non-paying users -> first payment,
customers -> second paid order."""

Cell = tuple[str, tuple[Any, ...]]
"""An aggregate cell: (table name, key columns)."""


@dataclass(frozen=True, slots=True)
class Milestone:
    """A time-to-milestone observation: start day and the day reached (``None``: not yet)."""

    start: date
    reached: date | None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one person adds to the aggregates (a row of ``survival_contributions``)."""

    groups: tuple[str, ...]
    tenure_days: int | None = None
    last_day: date | None = None
    churned: bool | None = None
    activation: Milestone | None = None
    conversion: Milestone | None = None
    repeat: Milestone | None = None
    cohort_week: date | None = None
    engaged_weeks: tuple[int, ...] = ()

    def milestone(self, kind: str) -> Milestone | None:
        """The observation for one milestone kind."""
        return {ACTIVATION: self.activation, CONVERSION: self.conversion, REPEAT: self.repeat}[kind]


def _day(at: datetime | None) -> date | None:
    return None if at is None else at.astimezone(UTC).date()


def group_keys(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The comparison groups a persons row belongs to (``dimension:value``), sorted."""
    keys = {"all"}
    if row.get("entry_path"):
        keys.add(f"entry:{row['entry_path']}")
    for dimension in ("segment", "stage", "level", "tier"):
        if row.get(dimension) is not None:
            keys.add(f"{dimension}:{row[dimension]}")
    keys.update(f"product:{p}" for p in row.get("products") or ())
    if row.get("cohort_week") is not None:
        keys.add(f"cohort:{row['cohort_week'].isoformat()}")
    return tuple(sorted(keys))


def contribution_of(row: Mapping[str, Any]) -> Contribution:
    """The contribution of a ``persons`` row (columns of ``PERSON_COLUMNS``).

    * tenure: people with a first engagement; ``tenure_days`` (UTC days between first and
      last engagement), the last engagement day, and whether the row's stage is churned;
    * activation: buyers by entry (paid before or without using a device), from the first
      paid order to the first activation (or first use of a device they paid for);
    * conversion: non-paying users by entry, from first device use to first paid order;
    * repeat: customers, from first to second paid order;
    * retention: cohort week and engaged weeks.
    """
    first_paid = _day(row.get("first_paid_order_at"))
    first_use = _day(row.get("first_use_at"))
    engaged = row.get("first_engagement_at") is not None and row.get("last_engagement_at")
    activation = conversion = repeat = None
    is_buyer_entry = row.get("first_paid_order_at") is not None and (
        row.get("first_use_at") is None or row["first_paid_order_at"] <= row["first_use_at"]
    )
    if first_paid is not None and is_buyer_entry:
        activation = Milestone(first_paid, _day(row.get("device_activation_at")))
    if first_use is not None and row.get("entry_path") == "non_paying_user":
        conversion = Milestone(first_use, first_paid)
    if first_paid is not None:
        repeat = Milestone(first_paid, _day(row.get("second_paid_order_at")))
    return Contribution(
        groups=group_keys(row),
        tenure_days=int(row["tenure_days"]) if engaged else None,
        last_day=_day(row["last_engagement_at"]) if engaged else None,
        churned=(row.get("stage") == "churned") if engaged else None,
        activation=activation,
        conversion=conversion,
        repeat=repeat,
        cohort_week=row.get("cohort_week"),
        engaged_weeks=tuple(sorted(set(row.get("engaged_weeks") or ()))),
    )


_Template = tuple[str, tuple[Any, ...], tuple[Any, ...], bool]
"""A cell without its group: (table, key before the group, key after it, whether cohort
groups are left out of it)."""


def _templates(c: Contribution) -> list[_Template]:
    """The cells of one group of ``c``, in :func:`cells` order, with the group left out."""
    out: list[_Template] = []
    if c.tenure_days is not None and c.last_day is not None:
        if c.churned:
            out.append(("survival_tenure_closed", (), (c.tenure_days,), False))
        else:
            out.append(("survival_tenure_open", (), (c.tenure_days, c.last_day), False))
    for kind in MILESTONES:
        m = c.milestone(kind)
        if m is None:
            continue
        if m.reached is not None:
            out.append(("milestone_events", (kind,), (max(0, (m.reached - m.start).days),), False))
        else:
            out.append(("milestone_pending", (kind,), (m.start,), False))
    if c.cohort_week is not None:
        out.append(("retention_cohorts", (), (c.cohort_week,), True))
        out.extend(("retention_on", (), (c.cohort_week, w), True) for w in c.engaged_weeks)
        if c.engaged_weeks:
            out.append(("retention_last", (), (c.cohort_week, c.engaged_weeks[-1]), True))
    return out


def _in_group(templates: Iterable[_Template], g: str) -> list[_Template]:
    if not g.startswith("cohort:"):
        return list(templates)
    return [t for t in templates if not t[3]]


def _cell(template: _Template, g: str) -> Cell:
    table, before, after, _ = template
    return (table, (*before, g, *after))


def cells(c: Contribution) -> list[Cell]:
    """The aggregate cells this contribution counts once in."""
    templates = _templates(c)
    return [_cell(t, g) for g in c.groups for t in _in_group(templates, g)]


def total(contributions: Iterable[Contribution]) -> dict[Cell, int]:
    """Counts per cell of a set of contributions (the from-scratch aggregates)."""
    counts: dict[Cell, int] = {}
    for c in contributions:
        for cell in cells(c):
            counts[cell] = counts.get(cell, 0) + 1
    return counts


def _count(items: Iterable[Any]) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def delta(old: Contribution | None, new: Contribution | None) -> dict[Cell, int]:
    """Signed count changes moving one person from ``old`` to ``new`` (zeros omitted).

    Equal to ``cells(new) - cells(old)`` as multisets, computed without listing both: a
    group in both contributions changes by the difference of their per-group cells
    (usually one tenure cell, or nothing), so the cost follows what changed.
    """
    before = _templates(old) if old is not None else []
    after = _templates(new) if new is not None else []
    old_groups = _count(old.groups) if old is not None else {}
    new_groups = _count(new.groups) if new is not None else {}
    moved = _count(after)
    for t in before:
        moved[t] = moved.get(t, 0) - 1
    moved = {t: n for t, n in moved.items() if n}
    change: dict[Cell, int] = {}

    def add(templates: Iterable[_Template], g: str, times: int) -> None:
        for t in _in_group(templates, g):
            cell = _cell(t, g)
            change[cell] = change.get(cell, 0) + times

    for g in sorted(old_groups.keys() | new_groups.keys()):
        n_old, n_new = old_groups.get(g, 0), new_groups.get(g, 0)
        both = min(n_old, n_new)
        if both and moved:
            for t in _in_group(moved, g):
                cell = _cell(t, g)
                change[cell] = change.get(cell, 0) + both * moved[t]
        if n_old > both:
            add(before, g, both - n_old)
        if n_new > both:
            add(after, g, n_new - both)
    return {cell: n for cell, n in change.items() if n}


def apply_delta(counts: dict[Cell, int], change: Mapping[Cell, int]) -> None:
    """Add a delta to in-memory counts, dropping cells that reach zero."""
    for cell, n in change.items():
        value = counts.get(cell, 0) + n
        if value:
            counts[cell] = value
        else:
            counts.pop(cell, None)
