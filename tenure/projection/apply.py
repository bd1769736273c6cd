"""The apply stage: merge a batch of events into the raw states, mark what must be derived.

One transaction per batch (the caller's). Every write is a merge, so applying a batch
twice, or two batches in any order, leaves the same raw state; Kafka offsets are committed
only after the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from tenure.domain.device import DeviceState
from tenure.domain.events import (
    DeviceActivated,
    DeviceUsed,
    DomainEvent,
    PaymentCompleted,
    PersonErasureRequested,
)
from tenure.domain.neighbourhood import group_by_key
from tenure.domain.person import PersonState
from tenure.projection import raw_store
from tenure.projection.raw_cache import DEVICES, PERSONS, Merged, StateCache, merge_batch

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one batch changed."""

    events: int
    devices_changed: int
    persons_changed: int
    persons_marked: int
    """Persons queued by their own events (those queued through a device are not counted)."""
    devices_marked: int


@dataclass(slots=True)
class RawCaches:
    """The raw states this process last wrote or read (see :mod:`raw_cache`)."""

    devices: StateCache[DeviceState] = field(default_factory=StateCache)
    persons: StateCache[PersonState] = field(default_factory=StateCache)

    def clear(self) -> None:
        """Forget every cached state."""
        self.devices.clear()
        self.persons.clear()


def _named(device_id: str, events: Iterable[DomainEvent]) -> set[str]:
    """Person ids the events name about ``device_id`` (what they add to its mentions)."""
    named: set[str] = set()
    for event in events:
        if isinstance(event, DeviceUsed | DeviceActivated):
            if event.person_id is not None:
                named.add(event.person_id)
        elif isinstance(event, PaymentCompleted):
            named.add(event.payer_id)
            if event.beneficiary_id is not None:
                named.add(event.beneficiary_id)
    return named


def _new_mentions(
    merged: Merged[DeviceState], parts: Mapping[str, list[DomainEvent]]
) -> list[tuple[str, str]]:
    """(person, device) pairs the changed devices mention and their stored state did not.

    Without tombstones a device mentions exactly the ids its facts name, so the ids this
    batch names are enough (a pair already recorded is skipped by the insert); with
    tombstones (redaction), the states are compared.
    """
    pairs: list[tuple[str, str]] = []
    for device_id, state in merged.changed.items():
        if state.tombstones:
            old = merged.before.get(device_id)
            ids = state.person_ids - (old.person_ids if old is not None else frozenset())
        else:
            ids = frozenset(_named(device_id, parts[device_id]))
        pairs += [(p, device_id) for p in ids]
    return pairs


def _mark_mentioned_dirty(conn: psycopg.Connection[Any], device_ids: Iterable[str]) -> None:
    """Queue every person a changed device mentions (their views depend on it).

    An existing queue row is touched, not left alone: a derive pass whose snapshot predates
    this batch then fails to claim it (serialization error, retried) instead of consuming
    the mark with the old state.
    """
    keys = sorted(device_ids)
    if keys:
        conn.execute(
            "INSERT INTO dirty_persons (person_id) SELECT DISTINCT person_id FROM device_mentions"
            " WHERE device_id = ANY(%s) ORDER BY 1"
            " ON CONFLICT (person_id) DO UPDATE SET person_id = EXCLUDED.person_id",
            (keys,),
        )


def _mark_dirty(conn: psycopg.Connection[Any], table: str, column: str, ids: Iterable[str]) -> int:
    keys = sorted(set(ids))
    if keys:
        conn.execute(
            f"INSERT INTO {table} ({column}) SELECT unnest(%s::text[])"
            f" ON CONFLICT ({column}) DO UPDATE SET {column} = EXCLUDED.{column}",
            (keys,),
        )
    return len(keys)


def _record_progress(conn: psycopg.Connection[Any], progress: Mapping[Partition, datetime]) -> None:
    if not progress:
        return
    keys = sorted(progress)
    conn.execute(
        "INSERT INTO projection_progress (topic, kafka_partition, max_event_time)"
        " SELECT * FROM unnest(%s::text[], %s::int[], %s::timestamptz[])"
        " ON CONFLICT (topic, kafka_partition) DO UPDATE SET max_event_time ="
        " GREATEST(projection_progress.max_event_time, EXCLUDED.max_event_time)",
        ([t for t, _ in keys], [p for _, p in keys], [progress[k] for k in keys]),
    )


def apply_events(
    conn: psycopg.Connection[Any],
    events: Sequence[DomainEvent],
    progress: Mapping[Partition, datetime],
    caches: RawCaches | None = None,
) -> ApplyResult:
    """Merge ``events`` into the raw states and queue the humans and devices they affect.

    ``progress`` is the latest event time per input partition in this batch. Must run in
    the caller's transaction. ``caches`` (the process's raw states) saves reading states
    back; without it every touched state is read.
    """
    caches = RawCaches() if caches is None else caches
    facts = group_by_key(events)
    device_parts, person_parts = facts.devices, facts.persons
    links = [(link.person_id, link.alias_id) for link in facts.links]
    spreading = {p for link in links for p in link}  # a link or erasure can reach others
    spreading |= {e.person_id for e in events if isinstance(e, PersonErasureRequested)}

    # Lock order everywhere: devices, then persons, each by key.
    devices = merge_batch(conn, DEVICES, caches.devices, device_parts)
    changed_devices = devices.changed
    raw_store.add_mentions(conn, _new_mentions(devices, device_parts))
    changed_persons = merge_batch(conn, PERSONS, caches.persons, person_parts).changed
    raw_store.add_links(conn, links)

    _mark_mentioned_dirty(conn, changed_devices)
    dirty_persons = set(changed_persons)
    dirty_devices = set(changed_devices)
    if spreading:
        # An erasure (or a link to an erased id) redacts every device the human mentions,
        # which changes what those devices contribute to everybody else they mention.
        human, _ = raw_store.components(conn, spreading)
        reached = raw_store.devices_mentioning(conn, human)
        dirty_devices |= reached
        dirty_persons |= human | raw_store.persons_mentioned_by(conn, reached)
    marked_persons = _mark_dirty(conn, "dirty_persons", "person_id", dirty_persons)
    marked_devices = _mark_dirty(conn, "dirty_devices", "device_id", dirty_devices)
    _record_progress(conn, progress)
    return ApplyResult(
        len(events), len(changed_devices), len(changed_persons), marked_persons, marked_devices
    )
