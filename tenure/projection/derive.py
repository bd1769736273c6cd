"""The derive stage: turn queued humans and devices into read-model rows and transitions.

A pass claims a chunk of the ``dirty_persons`` / ``dirty_devices`` queues, oldest-queued
keys first (``tenure/storage/derive_queue.py``; ``SKIP LOCKED``: workers share the queue),
loads the raw neighbourhood of every claimed key in a handful of
queries, assembles it with the pure core and derives the views as of the watermark. The
claimed keys' raw deltas, just joined, are compacted in the same transaction. Rows
are upserted only forward (``basis`` and ``as_of`` never decrease); a row that could not
move forward is queued again. Transitions go to the ``lifecycle_transitions`` outbox in the
same transaction. Each person row records when its view next changes with no new facts
(``next_change_at``, ``tenure/domain/schedule.py``); :func:`queue_due_persons` queues the
rows whose time the watermark reached, so time-driven work is only those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from tenure.analytics.live import churn_model
from tenure.domain.codec import person_state_size
from tenure.domain.config import LifecycleConfig
from tenure.domain.device_view import derive_device
from tenure.domain.level import Level
from tenure.domain.neighbourhood import NeighbourhoodIndex, RawWorld
from tenure.domain.person import PersonState
from tenure.domain.schedule import next_change_at
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.domain.transitions import Transition, transitions
from tenure.domain.view import DEFAULT_CONFIG, PersonView, derive
from tenure.domain.world import assemble
from tenure.projection import raw_store
from tenure.projection.raw_cache import DEVICES, PERSONS, RawCaches, read_cached
from tenure.projection.raw_log import compact
from tenure.storage import derive_queue, progress
from tenure.storage.connection import Conn
from tenure.storage.read_models import (
    DEVICE_COLUMNS,
    STORED_PERSON_COLUMNS,
    device_row,
    stored_person_row,
)


@dataclass(frozen=True, slots=True)
class DeriveResult:
    """What one pass did."""

    persons: int
    devices: int
    transitions: int
    requeued: int


def basis_of(part: RawWorld) -> int:
    """The size of a raw neighbourhood: never decreases as facts arrive.

    Devices count tombstones above facts (facts only merge when a tombstone is added);
    erased persons rank above any live state (``person_state_size``).
    """
    return (
        sum(len(d.tombstones) * 2**32 + d.fact_count for d in part.devices.values())
        + sum(person_state_size(p) for p in part.person_states.values())
        + len(part.identity.links)
    )


def current_watermark(conn: Conn, allowed_lateness: timedelta) -> datetime | None:
    """The projection's as-of instant: the latest event time seen, less the lateness."""
    return progress.projection_watermark(conn, allowed_lateness)


@dataclass(frozen=True, slots=True)
class _Loaded:
    raw: RawWorld
    devices_with_deltas: frozenset[str]
    persons_with_deltas: frozenset[str]


def _load(conn: Conn, person_ids: list[str], device_ids: list[str], caches: RawCaches) -> _Loaded:
    """The union of the neighbourhoods of the given persons and devices."""
    humans, _ = raw_store.components(conn, person_ids)
    devices = raw_store.devices_mentioning(conn, humans) | set(device_ids)
    mentioned = raw_store.persons_mentioned_by(conn, devices)
    ids, graph = raw_store.components(conn, humans | mentioned)
    device_read = read_cached(conn, DEVICES, caches.devices, sorted(devices))
    person_read = read_cached(conn, PERSONS, caches.persons, sorted(ids))
    return _Loaded(
        RawWorld(devices=device_read.states, person_states=person_read.states, identity=graph),
        device_read.with_deltas,
        person_read.with_deltas,
    )


def _compact_claimed(
    conn: Conn, loaded: _Loaded, person_ids: list[str], device_ids: list[str], caches: RawCaches
) -> None:
    """Write the joined raw states of the claimed keys that had deltas back as compacted
    rows (each claimed key is compacted by the pass that claimed it)."""
    raw = loaded.raw
    devices = {d: raw.devices[d] for d in device_ids if d in loaded.devices_with_deltas}
    persons = {p: raw.person_states[p] for p in person_ids if p in loaded.persons_with_deltas}
    compact(conn, DEVICES, caches.devices, devices)
    compact(conn, PERSONS, caches.persons, persons)


def _old_views(conn: Conn, person_ids: list[str], as_of: datetime) -> dict[str, PersonView]:
    rows = conn.execute(
        "SELECT person_id, segment, stage, level, tier, is_super_user FROM persons"
        " WHERE person_id = ANY(%b)",
        (person_ids,),
    ).fetchall()
    return {
        str(r[0]): PersonView(
            str(r[0]),
            as_of,
            segment=Segment(r[1]),
            stage=Stage(r[2]),
            level=Level(r[3]),
            tier=str(r[4]),
            is_super_user=bool(r[5]),
        )
        for r in rows
    }


def _upsert(
    conn: Conn, table: str, key: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> set[str]:
    """Insert or move rows forward; return the keys that did not move (to queue again)."""
    if not rows:
        return set()
    cols = (*columns, "basis")
    staging = sql.Identifier(f"{table}_incoming")
    conn.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
            staging, sql.Identifier(table)
        )
    )
    with conn.cursor().copy(
        sql.SQL("COPY {} ({}) FROM STDIN").format(
            staging, sql.SQL(", ").join(map(sql.Identifier, cols))
        )
    ) as copy:
        for row in rows:
            copy.write_row(row)
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in cols if c != key
    )
    guard = sql.SQL("{t}.basis <= EXCLUDED.basis").format(t=sql.Identifier(table))
    if "as_of" in columns:
        guard = guard + sql.SQL(" AND {t}.as_of <= EXCLUDED.as_of").format(t=sql.Identifier(table))
    moved = conn.execute(
        sql.SQL(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM {s} ON CONFLICT ({k}) DO UPDATE"
            " SET {u} WHERE {g} RETURNING {k}"
        ).format(
            t=sql.Identifier(table),
            cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
            s=staging,
            k=sql.Identifier(key),
            u=updates,
            g=guard,
        )
    ).fetchall()
    return {str(r[0]) for r in rows} - {str(r[0]) for r in moved}


def _outbox(conn: Conn, found: list[Transition], as_of: datetime) -> None:
    if found:
        conn.execute(
            "INSERT INTO lifecycle_transitions (transition_id, person_id, kind, old_value,"
            " new_value, effective_at, as_of) SELECT * FROM unnest(%b::text[], %b::text[],"
            " %b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[])"
            " ON CONFLICT (transition_id) DO NOTHING",
            (
                [t.id for t in found], [t.person_id for t in found], [t.kind for t in found],
                [t.old for t in found], [t.new for t in found], [t.at for t in found],
                [as_of] * len(found),
            ),
        )  # fmt: skip


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
    with conn.transaction() as claimed:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # The claim is the transaction's first statement, so it takes the snapshot: a key
        # queued again after it (apply touches the queue row) fails the claim with a
        # serialization error (retried) or stays queued; never a claim on a stale snapshot.
        person_ids = derive_queue.claim(conn, "person", limit)
        device_ids = derive_queue.claim(conn, "device", limit)
        if not person_ids and not device_ids:
            return DeriveResult(0, 0, 0, 0)
        result = _derive_claimed(conn, person_ids, device_ids, allowed_lateness, config, caches)
        if result is None:
            raise psycopg.Rollback(claimed)  # nothing derivable yet: the queue stays as it was
        return result
    return DeriveResult(0, 0, 0, 0)


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
    with conn.transaction() as claimed:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        person_ids = derive_queue.claim_keys(conn, "person", _of_kind(keys, "person"))
        device_ids = derive_queue.claim_keys(conn, "device", _of_kind(keys, "device"))
        if not person_ids and not device_ids:
            return DeriveResult(0, 0, 0, 0)
        result = _derive_claimed(conn, person_ids, device_ids, allowed_lateness, config, caches)
        if result is None:
            raise psycopg.Rollback(claimed)
        return result
    return DeriveResult(0, 0, 0, 0)


def unqueue(conn: Conn, keys: Sequence[QueuedKey]) -> None:
    """Drop every queue mark of ``keys`` (a key the derive stage dead-lettered)."""
    derive_queue.claim_keys(conn, "person", _of_kind(keys, "person"))
    derive_queue.claim_keys(conn, "device", _of_kind(keys, "device"))


def requeue(conn: Conn, keys: Sequence[QueuedKey]) -> None:
    """Queue ``keys`` for derive (re-driving a derive dead letter), at the back."""
    derive_queue.enqueue(conn, "person", _of_kind(keys, "person"))
    derive_queue.enqueue(conn, "device", _of_kind(keys, "device"))


def _derive_claimed(
    conn: Conn,
    person_ids: list[str],
    device_ids: list[str],
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    caches: RawCaches | None,
) -> DeriveResult | None:
    """Derive claimed keys in the caller's repeatable read transaction (``None``: no
    watermark yet, nothing derivable)."""
    as_of = current_watermark(conn, allowed_lateness)
    if as_of is None:
        return None
    caches = RawCaches() if caches is None else caches
    loaded = _load(conn, person_ids, device_ids, caches)
    raw = loaded.raw
    world = assemble(raw.devices, raw.person_states, raw.identity)
    index = NeighbourhoodIndex(raw)
    canonical = index.canonical
    humans = sorted({canonical.get(p, p) for p in person_ids})
    members = {h: sorted(index.members.get(h, set()) - {h}) for h in humans}
    old = _old_views(conn, sorted({*humans, *(m for ms in members.values() for m in ms)}), as_of)
    rows: list[tuple[Any, ...]] = []
    gone: list[str] = []
    found: list[Transition] = []
    churn: list[churn_model.Person] = []  # hook: the churn model's pending queue
    for human in humans:
        state = world.persons.get(human, PersonState(human))
        view = derive(state, as_of, config)
        found += transitions(old.get(human), view)
        gone += [m for m in members[human] if m in old]  # now aliases of ``human``
        churn += [(human, churn_model.days_of(state, as_of), "*")]
        churn += [(m, None, "*") for m in members[human] if m in old]
        if view.erased:
            gone.append(human)
            continue
        basis = basis_of(index.neighbourhood(human))
        rows.append(
            (*stored_person_row(view, members[human], next_change_at(state, view, config)), basis)
        )
    if gone:
        conn.execute("DELETE FROM persons WHERE person_id = ANY(%b)", (sorted(gone),))
    stale = _upsert(conn, "persons", "person_id", STORED_PERSON_COLUMNS, rows)
    device_rows = [
        (*device_row(derive_device(world.devices[d])), basis_of(index.device_neighbourhood(d)))
        for d in device_ids
        if d in world.devices
    ]
    stale_devices = _upsert(conn, "devices", "device_id", DEVICE_COLUMNS, device_rows)
    _outbox(conn, found, as_of)
    churn_model.queue_people(conn, churn)
    _compact_claimed(conn, loaded, person_ids, device_ids, caches)
    derive_queue.enqueue(conn, "person", sorted(stale))
    derive_queue.enqueue(conn, "device", sorted(stale_devices))
    return DeriveResult(len(rows), len(device_rows), len(found), len(stale) + len(stale_devices))


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
