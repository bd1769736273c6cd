"""The derive stage: turn queued humans and devices into read-model rows and transitions.

A pass claims a chunk of the ``dirty_persons`` / ``dirty_devices`` queues, oldest-queued
keys first (``tenure/storage/derive_queue.py``; a key lock each, skipped when another pass
holds it: workers share the queue),
loads the raw neighbourhood of every claimed key in a handful of
queries, assembles it with the pure core and derives the views as of the watermark. The
claimed keys' raw deltas, just joined, are compacted in the same transaction. Rows
are upserted only forward (``basis`` and ``as_of`` never decrease); a row that could not
move forward is queued again. Transitions go to the ``lifecycle_transitions`` outbox in the
same transaction. Each person row records when its view next changes with no new facts
(``next_change_at``, ``tenure/domain/schedule.py``); :func:`queue_due_persons` queues the
rows whose time the watermark reached, so time-driven work is only those rows.

The stage reads and writes only through the storage seam (:class:`tenure.storage.seam.
ProjectionStore`, :func:`derive_chunk` / :func:`derive_claimed`): :func:`derive_pass` runs it
on Postgres in a repeatable read transaction; unit tests run it on the memory backend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import psycopg

from tenure.analytics.return_time_filing import Person, days_of
from tenure.domain.config import LifecycleConfig
from tenure.domain.device_view import device_view_of
from tenure.domain.knowledge import neighbourhood_knowledge
from tenure.domain.neighbourhood import NeighbourhoodIndex, RawWorld
from tenure.domain.person import PersonState
from tenure.domain.schedule import next_change_at
from tenure.domain.transitions import Transition, transitions
from tenure.domain.view import DEFAULT_CONFIG, person_view_at
from tenure.domain.world import assemble
from tenure.eventlog.deadletter import DeadLetter
from tenure.storage import derive_queue, progress
from tenure.storage.connection import Conn, repeatable_read_transaction
from tenure.storage.postgres_store import postgres_store
from tenure.storage.raw_states import DEVICES, PERSONS
from tenure.storage.read_models import (
    device_row,
    stored_person_row,
)
from tenure.storage.seam import PersonWrite, ProjectionStore
from tenure.storage.state_cache import RawCaches


@dataclass(frozen=True, slots=True)
class DeriveResult:
    """What one pass did."""

    persons: int
    devices: int
    transitions: int
    requeued: int
    waited_s: tuple[KeyWait, ...] = ()
    """For each key whose view the pass wrote: its kind and the seconds from its queueing
    until the pass had written the view (its commit follows)."""


KeyWait = tuple[str, float]
"""A derived key's kind (``person`` or ``device``) and a time in seconds."""


def current_watermark(conn: Conn, allowed_lateness: timedelta) -> datetime | None:
    """The projection's as-of instant: the latest event time seen, less the lateness."""
    return progress.projection_watermark(conn, allowed_lateness)


@dataclass(frozen=True, slots=True)
class _Loaded:
    raw: RawWorld
    devices_with_deltas: frozenset[str]
    persons_with_deltas: frozenset[str]


def _load(store: ProjectionStore, person_ids: list[str], device_ids: list[str]) -> _Loaded:
    """The union of the neighbourhoods of the given persons and devices."""
    graph_store = store.key_graph
    humans, _ = graph_store.components(person_ids)
    devices = graph_store.devices_mentioning(humans) | set(device_ids)
    mentioned = graph_store.persons_mentioned_by(devices)
    ids, graph = graph_store.components(humans | mentioned)
    device_read = store.raw_states.read(DEVICES, sorted(devices))
    person_read = store.raw_states.read(PERSONS, sorted(ids))
    return _Loaded(
        RawWorld(devices=device_read.states, person_states=person_read.states, identity=graph),
        device_read.with_deltas,
        person_read.with_deltas,
    )


def _compact_claimed(
    store: ProjectionStore, loaded: _Loaded, person_ids: list[str], device_ids: list[str]
) -> None:
    """Write the joined raw states of the claimed keys that had deltas back as compacted
    rows (each claimed key is compacted by the pass that claimed it)."""
    raw = loaded.raw
    devices = {d: raw.devices[d] for d in device_ids if d in loaded.devices_with_deltas}
    persons = {p: raw.person_states[p] for p in person_ids if p in loaded.persons_with_deltas}
    store.raw_states.compact(DEVICES, devices)
    store.raw_states.compact(PERSONS, persons)


def derive_pass(
    conn: Conn,
    *,
    allowed_lateness: timedelta,
    config: LifecycleConfig = DEFAULT_CONFIG,
    limit: int = 500,
    caches: RawCaches | None = None,
) -> DeriveResult:
    """Derive one chunk of the queues in one transaction; return what was done.

    ``caches`` (the process's decoded raw states, checked against each row's version)
    saves decoding the states it holds.
    """
    with repeatable_read_transaction(conn) as claimed:
        # The claim is the transaction's first statement, so it takes the snapshot: a key
        # queued again after it (apply touches the queue row) fails the claim with a
        # serialization error (retried) or stays queued; never a claim on a stale snapshot.
        store = postgres_store(conn, caches)
        result = derive_chunk(store, allowed_lateness=allowed_lateness, config=config, limit=limit)
        if result is None:
            raise psycopg.Rollback(claimed)  # nothing derivable now: the queue stays as it was
        return result
    return DeriveResult(0, 0, 0, 0)


def derive_chunk(
    store: ProjectionStore,
    *,
    allowed_lateness: timedelta,
    config: LifecycleConfig = DEFAULT_CONFIG,
    limit: int = 500,
) -> DeriveResult | None:
    """Claim up to ``limit`` queued persons and devices and derive them, in the store's
    current transaction (``None``: nothing derivable now, see :func:`derive_claimed`; the
    caller rolls the claim back, as :func:`derive_pass` does, so call it on a store without
    transactions only once the progress has a watermark)."""
    person_ids = store.queue.claim("person", limit)
    device_ids = store.queue.claim("device", limit)
    if not person_ids and not device_ids:
        return DeriveResult(0, 0, 0, 0)
    return derive_claimed(store, person_ids, device_ids, allowed_lateness, config)


QueuedKey = tuple[str, str]
"""A queued key: ``("person", id)`` or ``("device", id)``."""


def queued_keys(conn: Conn, limit: int) -> list[QueuedKey]:
    """Up to ``limit`` queued persons and devices, oldest-queued first (the keys a pass
    would claim)."""
    persons = derive_queue.oldest(conn, "person", limit)
    devices = derive_queue.oldest(conn, "device", limit)
    return [("person", p) for p in persons] + [("device", d) for d in devices]


def _of_kind(keys: Sequence[QueuedKey], kind: str) -> list[str]:
    return [k for which, k in keys if which == kind]


def derive_keys(
    conn: Conn,
    keys: Sequence[QueuedKey],
    *,
    allowed_lateness: timedelta,
    config: LifecycleConfig = DEFAULT_CONFIG,
    caches: RawCaches | None = None,
) -> DeriveResult:
    """Derive exactly ``keys`` (claiming their marks) in one transaction (the derive
    stage's isolation of a failing pass: see ``Projector.derive``)."""
    with repeatable_read_transaction(conn) as claimed:
        store = postgres_store(conn, caches)
        person_ids = store.queue.claim_keys("person", _of_kind(keys, "person"))
        device_ids = store.queue.claim_keys("device", _of_kind(keys, "device"))
        if not person_ids and not device_ids:
            return DeriveResult(0, 0, 0, 0)
        result = derive_claimed(store, person_ids, device_ids, allowed_lateness, config)
        if result is None:
            raise psycopg.Rollback(claimed)
        return result
    return DeriveResult(0, 0, 0, 0)


def key_dead_letter(key: QueuedKey, category: str, reason: str) -> DeadLetter:
    """The dead letter of a key the derive stage cannot derive: its payload names the key
    (``{"person_id": ...}`` or ``{"device_id": ...}``); its origin carries only a digest."""
    kind, value = key
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return DeadLetter(
        None, orjson.dumps({f"{kind}_id": value}), category, reason, "", f"derive/{kind}/{digest}"
    )


def unqueue(conn: Conn, keys: Sequence[QueuedKey]) -> None:
    """Drop every queue mark of ``keys`` (a key the derive stage dead-lettered)."""
    derive_queue.drop_marks(conn, "person", _of_kind(keys, "person"))
    derive_queue.drop_marks(conn, "device", _of_kind(keys, "device"))


def requeue(conn: Conn, keys: Sequence[QueuedKey]) -> None:
    """Queue ``keys`` for derive (re-driving a derive dead letter), at the back."""
    derive_queue.enqueue(conn, "person", _of_kind(keys, "person"))
    derive_queue.enqueue(conn, "device", _of_kind(keys, "device"))


def derive_claimed(
    store: ProjectionStore,
    person_ids: list[str],
    device_ids: list[str],
    allowed_lateness: timedelta,
    config: LifecycleConfig,
) -> DeriveResult | None:
    """Derive claimed keys in the store's current transaction (Postgres: the caller's
    repeatable read transaction).

    ``None``: nothing derivable now, and the caller rolls the claim back: no watermark yet,
    or every claimed person is a human another pass is deriving and no device was claimed.
    Rolled back, such a claim leaves the marks where they were and notifies nobody; given
    back and committed, its marks' notification would wake the deriver to claim the same
    held ids again at once, over and over until the holder commits.
    """
    as_of = store.progress.watermark(allowed_lateness)
    if as_of is None:
        return None
    loaded = _load(store, person_ids, device_ids)
    raw = loaded.raw
    world = assemble(raw.devices, raw.person_states, raw.identity)
    index = NeighbourhoodIndex(raw)
    canonical = index.canonical
    humans = sorted({canonical.get(p, p) for p in person_ids})
    held = store.queue.hold_humans(humans)
    if humans and not held and not device_ids:
        return None
    if len(held) < len(humans):  # another pass derives them now: queued again, same place
        store.queue.give_back("person", [p for p in person_ids if canonical.get(p, p) not in held])
        humans = [h for h in humans if h in held]
    members = {h: sorted(index.members.get(h, set()) - {h}) for h in humans}
    old = store.read_models.current_views(
        sorted({*humans, *(m for ms in members.values() for m in ms)}), as_of
    )
    writes: list[PersonWrite] = []
    found: dict[str, list[Transition]] = {}
    churn: dict[str, list[Person]] = {}  # hook: the churn model's pending queue
    for human in humans:
        state = world.persons.get(human, PersonState(human))
        view = person_view_at(state, as_of, config)
        found[human] = transitions(old.get(human), view)
        gone = [m for m in members[human] if m in old]  # now aliases of ``human``
        churn[human] = [(human, days_of(state, as_of), "*"), *((m, None, "*") for m in gone)]
        linked = bool(members[human])
        if view.erased:
            writes.append(PersonWrite(human, (*gone, human), None, linked))
            continue
        basis = neighbourhood_knowledge(index.neighbourhood(human))
        row = (*stored_person_row(view, members[human], next_change_at(state, view, config)), basis)
        writes.append(PersonWrite(human, tuple(gone), row, linked))
    stale, overtaken = store.read_models.write_persons(writes)
    if overtaken:  # another pass wrote them after this pass's snapshot: queued again, same place
        store.queue.give_back("person", [p for p in person_ids if canonical.get(p, p) in overtaken])
        humans = [h for h in humans if h not in overtaken]
    device_rows = [
        (
            *device_row(device_view_of(world.devices[d])),
            neighbourhood_knowledge(index.device_neighbourhood(d)),
        )
        for d in device_ids
        if d in world.devices
    ]
    stale_devices = store.read_models.upsert_devices(device_rows)
    store.outbox.add([t for h in humans for t in found[h]], as_of)
    store.churn.queue_people([c for h in humans for c in churn[h]])
    _compact_claimed(store, loaded, person_ids, device_ids)
    store.queue.enqueue("person", sorted(stale))
    store.queue.enqueue("device", sorted(stale_devices))
    written = set(humans)
    derived = [p for p in person_ids if canonical.get(p, p) in written]
    person_waits = store.queue.waited("person", derived)
    device_waits = store.queue.waited("device", [d for d in device_ids if d in world.devices])
    return DeriveResult(
        sum(1 for w in writes if w.row is not None and w.human not in overtaken),
        len(device_rows),
        sum(len(found[h]) for h in humans),
        len(stale) + len(stale_devices),
        (*(("person", w) for w in person_waits), *(("device", w) for w in device_waits)),
    )


def queue_due_persons(conn: Conn, allowed_lateness: timedelta, limit: int | None = None) -> int:
    """Queue the persons whose view changes by time by the watermark (their schedule,
    ``persons.next_change_at``, came due); return how many.

    Only those: a moving watermark re-derives the rows whose time has come, not every row
    derived before it. With ``limit``, at most that many, the earliest due first, so a
    moving watermark cannot flood the queue; repeated calls reach every due row.
    """
    as_of = current_watermark(conn, allowed_lateness)
    if as_of is None:
        return 0
    return derive_queue.queue_due_persons(conn, as_of, limit)
