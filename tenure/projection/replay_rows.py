"""A replayed part's read-model rows: the assembled world of independent persons turned into
``persons`` and ``devices`` rows and the persons' engagement days (the churn model's input).

Used by ``tenure replay`` in the replaying process (rows streamed into the staging copies
as they are built) and in its worker processes (rows built whole and sent back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from tenure.analytics.return_time_filing import Filing, filed
from tenure.domain.activity import engagement_days
from tenure.domain.config import LifecycleConfig
from tenure.domain.device_view import device_view_of
from tenure.domain.person import PersonState
from tenure.domain.schedule import next_change_at
from tenure.domain.view import person_view_at
from tenure.domain.world import World
from tenure.eventlog.deadletter import DeadLetter
from tenure.eventlog.isolation import poison_category
from tenure.projection.derive import QueuedKey, key_dead_letter
from tenure.storage.read_models import device_row, stored_person_row

T = TypeVar("T")


def aliases_by_person(world: World) -> dict[str, list[str]]:
    """Each canonical person id with the other ids of the same human."""
    members: dict[str, list[str]] = {}
    for member, canonical in world.identity.canonical_ids().items():
        if member != canonical:
            members.setdefault(canonical, []).append(member)
    return members


def _rows(
    items: Iterable[T],
    row: Callable[[T], tuple[Any, ...]],
    key: Callable[[T], QueuedKey],
    dead: list[DeadLetter],
) -> Iterator[tuple[Any, ...]]:
    """The read-model rows, built as they are consumed; a key whose row cannot be built
    (e.g. a sum over the 64-bit range) becomes a dead letter (appended to ``dead``) instead
    of failing the rebuild."""
    for item in items:
        try:
            built = row(item)
        except Exception as exc:
            category = poison_category(exc)
            if category is None:
                raise
            letter = key_dead_letter(key(item), category, f"{type(exc).__name__}: {exc}"[:500])
            dead.append(letter)
            continue
        yield built


def _stored_person_row(
    state: PersonState, at: datetime, config: LifecycleConfig, aliases: Sequence[str]
) -> tuple[Any, ...]:
    """A stored ``persons`` row: the view's columns, then its schedule (``next_change_at``)."""
    view = person_view_at(state, at, config)
    return stored_person_row(view, aliases, next_change_at(state, view, config))


@dataclass(slots=True)
class PartRows:
    """One replayed part: what it read and the rows it gives.

    ``persons``, ``devices`` and ``engagement`` are lazy in the replaying process (consume
    them in that order; a row that cannot be built adds its dead letter to ``letters``) and
    lists when a worker process sent them.
    """

    events: int
    latest: datetime | None
    """The latest event time the part's fold saw."""
    persons: Iterable[tuple[Any, ...]]
    devices: Iterable[tuple[Any, ...]]
    engagement: Iterable[tuple[str, list[date]]]
    """Each derived person's engagement days (none without an instant)."""
    letters: list[DeadLetter] = field(default_factory=list)
    """The part's dead letters: archive rows its fold could not take, keys without a row."""
    filing: Filing | None = None
    """The churn model's counts of the part's persons, when a worker process filed them."""


def part_rows(
    world: World,
    instant: datetime | None,
    config: LifecycleConfig,
    events: int,
    latest: datetime | None,
    letters: list[DeadLetter],
) -> PartRows:
    """The rows of ``world`` derived at ``instant`` (lazy; ``letters`` grows as they are
    built). No instant means no events: devices only, no person rows."""
    aliases = aliases_by_person(world)
    at = instant or datetime.min
    humans = [(p, s) for p, s in sorted(world.persons.items()) if not s.erased and instant]
    person_rows = _rows(
        humans,
        lambda item: _stored_person_row(item[1], at, config, aliases.get(item[0], ())),
        lambda item: ("person", item[0]),
        letters,
    )
    device_rows = _rows(
        sorted(world.devices.items()),
        lambda item: device_row(device_view_of(item[1])),
        lambda item: ("device", item[0]),
        letters,
    )
    days = ((p, list(engagement_days(s, at))) for p, s in humans)
    return PartRows(events, latest, person_rows, device_rows, days, letters)


def built(rows: PartRows) -> PartRows:
    """``rows`` with every row built (lists, in the order :class:`PartRows` asks) and its
    persons' churn filing, to be sent to another process."""
    persons = list(rows.persons)
    devices = list(rows.devices)
    engagement = list(rows.engagement)
    filing = filed(engagement)
    return PartRows(rows.events, rows.latest, persons, devices, engagement, rows.letters, filing)
