"""The apply stage: append a batch's facts to the raw states, mark what must be derived.

One transaction per batch (the caller's). Each key's facts of the batch are folded into one
delta and appended (:mod:`tenure.storage.raw_states`): nothing is read or locked, and every
raw state is a join, so applying a batch twice, or two batches in any order, leaves the
same raw state. Kafka offsets are committed only after the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from tenure.domain.device import DeviceState
from tenure.domain.events import DomainEvent, PersonErasureRequested
from tenure.domain.neighbourhood import group_by_key
from tenure.domain.person import PersonState
from tenure.storage import key_graph
from tenure.storage.raw_states import DEVICES, PERSONS, DeltaRows, append_deltas, delta_rows
from tenure.storage.state_cache import RawCaches

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one batch touched."""

    events: int
    devices_touched: int
    persons_touched: int
    persons_marked: int
    """Persons queued by their own events (those queued through a device are not counted)."""
    devices_marked: int


def _mentions(folds: Mapping[str, DeviceState]) -> list[tuple[str, str]]:
    """(person, device) pairs the batch's device folds mention (pairs already recorded
    are skipped by the insert)."""
    return [(p, device_id) for device_id, state in folds.items() for p in state.person_ids]


def _queue_persons(
    conn: psycopg.Connection[Any], person_ids: Iterable[str], device_ids: Iterable[str]
) -> int:
    """Queue ``person_ids`` and every person a touched device mentions (their views depend
    on it); return how many ``person_ids`` were queued.

    The queue is append-only (a mark per key and batch): a derive pass whose snapshot
    predates this batch does not see, so does not consume, its marks.
    """
    persons, devices = sorted(set(person_ids)), sorted(set(device_ids))
    if persons or devices:
        conn.execute(
            "INSERT INTO dirty_persons (person_id) SELECT unnest(%b::text[])"
            " UNION SELECT person_id FROM device_mentions WHERE device_id = ANY(%b)",
            (persons, devices),
        )
    return len(persons)


def _queue_devices(conn: psycopg.Connection[Any], device_ids: Iterable[str]) -> int:
    keys = sorted(set(device_ids))
    if keys:
        conn.execute("INSERT INTO dirty_devices (device_id) SELECT unnest(%b::text[])", (keys,))
    return len(keys)


def record_progress(
    conn: psycopg.Connection[Any],
    progress: Mapping[Partition, datetime],
    offsets: Mapping[Partition, int] | None = None,
) -> None:
    """Record the latest event time per input partition and, for Kafka batches, the next
    offset below which every record of the partition is applied or dead-lettered (the
    convergence checkpoint's verification reads it)."""
    offsets = offsets or {}
    if progress:
        keys = sorted(progress)
        conn.execute(
            "INSERT INTO projection_progress (topic, kafka_partition, max_event_time,"
            " applied_offset) SELECT * FROM unnest(%b::text[], %b::int[], %b::timestamptz[],"
            " %b::bigint[]) ON CONFLICT (topic, kafka_partition) DO UPDATE SET max_event_time ="
            " GREATEST(projection_progress.max_event_time, EXCLUDED.max_event_time),"
            " applied_offset = GREATEST(projection_progress.applied_offset,"
            " EXCLUDED.applied_offset)",
            ([t for t, _ in keys], [p for _, p in keys], [progress[k] for k in keys],
             [offsets.get(k) for k in keys]),
        )  # fmt: skip
    rest = sorted(set(offsets) - set(progress))
    if rest:  # partitions whose records were all dead letters
        conn.execute(
            "UPDATE projection_progress p SET applied_offset = GREATEST(p.applied_offset, o.n)"
            " FROM unnest(%b::text[], %b::int[], %b::bigint[]) AS o(topic, part, n)"
            " WHERE p.topic = o.topic AND p.kafka_partition = o.part",
            ([t for t, _ in rest], [p for _, p in rest], [offsets[k] for k in rest]),
        )


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch folded and encoded per key, ready to write (see :func:`prepare_batch`)."""

    events: int
    devices: DeltaRows[DeviceState]
    persons: DeltaRows[PersonState]
    mentions: list[tuple[str, str]]
    links: list[tuple[str, str]]
    spreading: frozenset[str]
    """Ids whose whole neighbourhood must be derived again (links, erasures)."""
    progress: Mapping[Partition, datetime]
    offsets: Mapping[Partition, int]
    """Per Kafka partition, the next offset after this batch's records (empty when the
    events come from the archive)."""


def prepare_batch(
    events: Sequence[DomainEvent],
    progress: Mapping[Partition, datetime],
    caches: RawCaches | None = None,
    offsets: Mapping[Partition, int] | None = None,
) -> PreparedBatch:
    """Group ``events`` per key, fold and encode each key's part: all the CPU work of
    applying a batch, with no database (so it can overlap the previous batch's write).

    ``progress`` is the latest event time per input partition in this batch. ``caches``
    remembers the deltas for the derive stage.
    """
    caches = RawCaches() if caches is None else caches
    facts = group_by_key(events)
    links = [(link.person_id, link.alias_id) for link in facts.links]
    spreading = {p for link in links for p in link}  # a link or erasure can reach others
    spreading |= {e.person_id for e in events if isinstance(e, PersonErasureRequested)}
    devices = delta_rows(DEVICES, facts.devices, caches.devices)
    return PreparedBatch(
        len(events),
        devices,
        delta_rows(PERSONS, facts.persons, caches.persons),
        _mentions(devices.folds),
        links,
        frozenset(spreading),
        progress,
        offsets or {},
    )


def write_batch(conn: psycopg.Connection[Any], batch: PreparedBatch) -> ApplyResult:
    """Append a prepared batch to the raw states and queue the humans and devices it
    affects. Must run in the caller's transaction."""
    append_deltas(conn, batch.devices)
    touched_devices = sorted(batch.devices.folds)
    key_graph.add_mentions(conn, batch.mentions)
    append_deltas(conn, batch.persons)
    touched_persons = sorted(batch.persons.folds)
    key_graph.add_links(conn, batch.links)

    dirty_persons = set(touched_persons)
    dirty_devices = set(touched_devices)
    if batch.spreading:
        # An erasure (or a link to an erased id) redacts every device the human mentions,
        # which changes what those devices contribute to everybody else they mention.
        human, _ = key_graph.components(conn, batch.spreading)
        reached = key_graph.devices_mentioning(conn, human)
        dirty_devices |= reached
        dirty_persons |= human | key_graph.persons_mentioned_by(conn, reached)
    marked_persons = _queue_persons(conn, dirty_persons, touched_devices)
    marked_devices = _queue_devices(conn, dirty_devices)
    record_progress(conn, batch.progress, batch.offsets)
    return ApplyResult(
        batch.events, len(touched_devices), len(touched_persons), marked_persons, marked_devices
    )


def apply_events(
    conn: psycopg.Connection[Any],
    events: Sequence[DomainEvent],
    progress: Mapping[Partition, datetime],
    caches: RawCaches | None = None,
) -> ApplyResult:
    """Append ``events`` to the raw states and queue the humans and devices they affect
    (:func:`prepare_batch` then :func:`write_batch`, in the caller's transaction)."""
    return write_batch(conn, prepare_batch(events, progress, caches))
