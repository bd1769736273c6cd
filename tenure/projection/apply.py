"""The apply stage: append a batch's facts to the raw states, mark what must be derived.

One transaction per batch (the caller's). Each key's facts of the batch are folded into one
delta and appended (:mod:`tenure.storage.raw_states`): nothing is read or locked, and every
raw state is a join, so applying a batch twice, or two batches in any order, leaves the
same raw state. Kafka offsets are committed only after the transaction.

:func:`prepare_batch` is CPU only; :func:`write_to` writes through the storage seam
(:class:`tenure.storage.seam.ProjectionStore`: Postgres via :func:`write_batch`, or memory in
unit tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tenure.domain.device import DeviceState
from tenure.domain.events import DomainEvent, PersonErasureRequested
from tenure.domain.neighbourhood import group_by_key
from tenure.domain.person import PersonState
from tenure.storage.connection import Conn
from tenure.storage.postgres_store import postgres_store
from tenure.storage.progress import Partition as Partition  # the batch's input partitions
from tenure.storage.raw_states import DEVICES, PERSONS, DeltaRows, delta_rows
from tenure.storage.seam import ProjectionStore
from tenure.storage.state_cache import RawCaches


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


def write_batch(conn: Conn, batch: PreparedBatch) -> ApplyResult:
    """Append a prepared batch to the raw states and queue the humans and devices it
    affects (:func:`write_to` over Postgres). Must run in the caller's transaction."""
    return write_to(postgres_store(conn), batch)


def write_to(store: ProjectionStore, batch: PreparedBatch) -> ApplyResult:
    """Append a prepared batch to ``store``'s raw states and queue the humans and devices
    it affects (in the store's current transaction)."""
    graph = store.key_graph
    store.raw_states.append(batch.devices)
    touched_devices = sorted(batch.devices.folds)
    graph.add_mentions(batch.mentions)
    store.raw_states.append(batch.persons)
    touched_persons = sorted(batch.persons.folds)
    graph.add_links(batch.links)

    dirty_persons = set(touched_persons)
    dirty_devices = set(touched_devices)
    if batch.spreading:
        # An erasure (or a link to an erased id) redacts every device the human mentions,
        # which changes what those devices contribute to everybody else they mention.
        human, _ = graph.components(batch.spreading)
        reached = graph.devices_mentioning(human)
        dirty_devices |= reached
        dirty_persons |= human | graph.persons_mentioned_by(reached)
    marked_persons = store.queue.queue_touched(dirty_persons, touched_devices)
    store.queue.enqueue("device", sorted(dirty_devices))
    store.progress.record(batch.progress, batch.offsets)
    return ApplyResult(
        batch.events, len(touched_devices), len(touched_persons), marked_persons, len(dirty_devices)
    )


def apply_events(
    conn: Conn,
    events: Sequence[DomainEvent],
    progress: Mapping[Partition, datetime],
    caches: RawCaches | None = None,
) -> ApplyResult:
    """Append ``events`` to the raw states and queue the humans and devices they affect
    (:func:`prepare_batch` then :func:`write_batch`, in the caller's transaction)."""
    return write_batch(conn, prepare_batch(events, progress, caches))
