"""Convergence: the raw states hold every archived event, whatever stopped or lagged.

A durable checkpoint (``projection_convergence``, :mod:`tenure.storage.convergence`) says up
to which ``event_archive.seq`` the raw states are known to hold every archived event
(applied, or dead-lettered as poison). It advances two ways:

- :func:`converge_projection` re-applies exactly the archived events after it (merges are
  idempotent, so events the projection already holds change nothing), isolating and
  dead-lettering poison events, then moves it to the archive's stable end. ``tenure up``
  calls it at start and after restarting the embedded broker (which loses every record
  the projector had not consumed yet); ``tenure catch-up`` calls it on demand. Cheap when
  nothing is missing: it reads only the rows after the checkpoint.
- :func:`verify_convergence`, run by the projector worker between derive slices, moves it
  over archive rows whose Kafka offset the projector has applied (``applied_offset`` per
  partition, written in each batch's transaction), without re-applying anything.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tenure.domain.events import DomainEvent, parse_event
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import isolate
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.apply import Partition, prepare_batch, write_batch
from tenure.projection.erasure import purge
from tenure.projection.person_refs import PersonRefs
from tenure.projection.screen import unstorable
from tenure.storage import archive, convergence
from tenure.storage.archive import ArchivedEvent
from tenure.storage.progress import record_progress
from tenure.storage.state_cache import RawCaches

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
VERIFY_WINDOW = 50_000
"""Archive rows one verification pass looks at."""


def _letter(row: ArchivedEvent, category: str, reason: str, field: str = "") -> DeadLetter:
    # stdlib json: it writes integers of any size (orjson refuses those over 64 bits)
    value = json.dumps(row.envelope, ensure_ascii=False, separators=(",", ":")).encode()
    return DeadLetter(
        row.record_key.encode(), value, category, reason, field, f"archive/{row.seq}", row.seq
    )


def screen_archived(
    rows: Sequence[ArchivedEvent],
) -> tuple[list[tuple[ArchivedEvent, DomainEvent]], list[DeadLetter]]:
    """Decode archived envelopes; those that are not events, or carry a value the
    projection cannot store, become dead letters."""
    kept: list[tuple[ArchivedEvent, DomainEvent]] = []
    dead: list[DeadLetter] = []
    for row in rows:
        try:
            event = parse_event(row.envelope)
        except (ValueError, KeyError, TypeError) as exc:
            dead.append(_letter(row, "malformed", f"cannot project: {exc!r}"))
            continue
        problem = unstorable(event)
        if problem is not None:
            dead.append(_letter(row, problem.category, problem.reason, problem.field))
            continue
        kept.append((row, event))
    return kept, dead


def apply_archived(
    conn: psycopg.Connection[Any],
    rows: Sequence[ArchivedEvent],
    dead_letters: DeadLetterSink,
    caches: RawCaches | None = None,
    refs: PersonRefs | None = None,
    *,
    then: Callable[[psycopg.Connection[Any]], object] = lambda conn: None,
) -> tuple[int, list[DeadLetter]]:
    """Apply archived events to the raw states in a transaction of their own, isolating
    poison events (savepoints) and recording their dead letters; return the events applied
    and the dead letters (published to the topic before the transaction commits).

    Person ids are resolved from their tokens first (``refs``; docs/design/erasure.md), and
    an erasure among the rows purges its human before they are applied (in its own
    transaction). ``then(conn)`` runs last in the same transaction (a checkpoint's advance).
    Call it with no transaction open (autocommit) so the erasure lock is the transaction's
    first statement."""
    caches = RawCaches() if caches is None else caches
    refs = PersonRefs() if refs is None else refs
    kept, dead = screen_archived(rows)
    people = refs.resolve(conn, [e for _, e in kept])
    if people.erasures or people.linked:
        purged = purge(conn, refs.pseudonymiser(conn), people.erasures, linked=people.linked)
        refs.forget(purged.tokens)
    with conn.transaction():
        events = refs.hold(conn, people)
        resolved = [(row, event) for (row, _), event in zip(kept, events, strict=True)]

        def attempt(part: Sequence[tuple[ArchivedEvent, DomainEvent]]) -> None:
            batch = prepare_batch([e for _, e in part], {}, caches)
            with conn.transaction():
                write_batch(conn, batch)

        poisoned = isolate(resolved, attempt)
        dead += [_letter(p.item[0], p.category, p.reason) for p in poisoned]
        failed = {p.item[0].seq for p in poisoned}
        latest: dict[Partition, datetime] = {}
        for row, event in resolved:
            where = (row.topic, row.partition)
            if row.seq not in failed and (where not in latest or event.at > latest[where]):
                latest[where] = event.at
        record_progress(conn, latest)
        dead_letters.store(conn, dead)
        dead_letters.publish(dead)
        then(conn)
    return len(resolved) - len(poisoned), dead


def _advance_to(seq: int, conn: psycopg.Connection[Any]) -> int:
    return convergence.advance(conn, seq)


def _read(conn: psycopg.Connection[Any], after: int, upto: int, chunk: int) -> list[ArchivedEvent]:
    return archive.read_range(conn, after, upto, chunk)


@contextmanager
def _autocommit(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Each block its own transaction on a pooled connection; restored after."""
    conn.commit()
    conn.autocommit = True
    try:
        yield
    finally:
        conn.autocommit = False


@dataclass(frozen=True, slots=True)
class Convergence:
    """What a convergence pass did."""

    checkpoint_before: int
    checkpoint: int
    applied: int
    dead_lettered: int


def converge(
    pool: ConnectionPool,
    publisher: EventPublisher | None = None,
    *,
    from_start: bool = False,
    chunk: int = 5000,
    stage: str = "catch-up",
    progress: Progress = lambda done: None,
) -> Convergence:
    """Re-apply the archived events after the checkpoint (every one with ``from_start``)
    to the raw states, chunk by chunk, each chunk and the checkpoint's advance in one
    transaction; then forget the projector's applied offsets (a restarted broker numbers
    its records from 0). Poison events are dead-lettered (table, and topic when a
    ``publisher`` is given) under ``stage``."""
    sink = DeadLetterSink(stage, publisher)
    caches = RawCaches()
    refs = PersonRefs()
    applied = dead = 0
    with pool.connection() as conn, _autocommit(conn):
        high = convergence.stable_archive_high(conn)
        before = 0 if from_start else convergence.checkpoint(conn)
        at = before
        while at < high:
            rows = _read(conn, at, high, chunk)
            if not rows:
                break
            advance = partial(_advance_to, rows[-1].seq)
            n, letters = apply_archived(conn, rows, sink, caches, refs, then=advance)
            sink.count(letters)
            applied += n
            dead += len(letters)
            at = rows[-1].seq
            progress(applied + dead)
        with conn.transaction():
            reached = convergence.advance(conn, high)
            convergence.forget_applied_offsets(conn)
    if applied or dead:
        log.warning(
            "convergence: re-applied %d archived events (%d dead-lettered), archive seq %d..%d",
            applied, dead, before, reached,
        )  # fmt: skip
    return Convergence(before, reached, applied, dead)


def converge_projection(pool: ConnectionPool, publisher: EventPublisher | None = None) -> int:
    """Bring the raw states up to every archived event (the supervisor calls it at start
    and after a broker recovery); return how many archived events were re-applied."""
    return converge(pool, publisher).applied


def catch_up_from_archive(
    pool: ConnectionPool,
    *,
    chunk: int = 5000,
    progress: Progress = lambda done: None,
) -> int:
    """Re-apply the whole archive (not only after the checkpoint); return the count."""
    return converge(pool, from_start=True, chunk=chunk, progress=progress).applied


def verify_convergence(pool: ConnectionPool, window: int = VERIFY_WINDOW) -> int:
    """Advance the checkpoint over archive rows the projector has applied from Kafka
    (their offset is below its applied offset); return the checkpoint."""
    with pool.connection() as conn, _autocommit(conn):
        high = convergence.stable_archive_high(conn)
        with conn.transaction():
            before = convergence.checkpoint(conn)
            reached = convergence.first_unapplied(conn, before, high, window)
            if reached > before:
                return convergence.advance(conn, reached)
            return before
