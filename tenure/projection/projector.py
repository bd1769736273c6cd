"""The live projector's work per batch of records, independent of the stream runtime.

``project`` applies a batch (one transaction, retried on deadlock), then runs derive
passes for up to a time budget and publishes pending transitions; ``settle`` does the
time-driven part and the derive work the apply stage queued. The worker in
``streams/projector`` calls ``apply_parsed`` (hot path) and ``settle`` (derive task) from
worker threads; tests and benchmarks call them directly. The raw states the process wrote
or read stay cached (``caches``), checked against each row's version.

The projector retries a conflicting transaction at once (``retry_conflicts``) and a lost
connection once on a live one, but does not wait for a database that is away: the error
propagates, and the worker waits it out in one place
(:func:`tenure.eventlog.transient.until_transient_passes`: the batch loop for the hot path,
the worker's derive, publish and aggregates tasks for the rest).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tenure.config import DEFAULT_PROJECTOR_CACHE_MB
from tenure.domain.config import LifecycleConfig
from tenure.domain.events import DomainEvent
from tenure.domain.view import DEFAULT_CONFIG
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import is_poison, isolate
from tenure.eventlog.publisher import EventPublisher
from tenure.projection import survival_stage
from tenure.projection.apply import (
    ApplyResult,
    Partition,
    PreparedBatch,
    prepare_batch,
    write_batch,
)
from tenure.projection.audiences import AudienceStage, Definitions, publish_changes, stored
from tenure.projection.derive import (
    DeriveResult,
    KeyWait,
    QueuedKey,
    derive_keys,
    derive_pass,
    key_dead_letter,
    queue_due_persons,
    queued_keys,
    unqueue,
)
from tenure.projection.erasure import purge
from tenure.projection.outbox import publish_pending
from tenure.projection.person_refs import PersonRefs, ResolvedBatch
from tenure.projection.person_topic import publish_person_changes
from tenure.projection.records import IncomingRecord, ParsedBatch, origin, parse_records
from tenure.storage import audience_members, derive_queue, person_pseudonyms
from tenure.storage.connection import CONNECTION_LOST, retry_conflicts
from tenure.storage.progress import record_progress
from tenure.storage.state_cache import RAW_STATES_SHARE, RawCaches

log = logging.getLogger(__name__)


def _nothing() -> None:
    """No heartbeat (the default of the publishing calls' ``turned``)."""


FIRST_PASS = 64
"""Keys the first derive pass of a slice claims when the pass size adapts (see
:meth:`Projector.derive`)."""


@dataclass
class ProjectorTotals:
    """Running counts, for metrics and tests: every record ends in exactly one of them."""

    applied: int = 0
    dead_lettered: int = 0
    persons_derived: int = 0
    devices_derived: int = 0
    transitions_published: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PreparedParse:
    """A decoded batch and its prepared writes (``None`` when preparing it failed on a
    poison event: the write then isolates it)."""

    parsed: ParsedBatch
    batch: PreparedBatch | None
    people: ResolvedBatch | None = None
    """How the batch's person ids were resolved (re-checked when it is written)."""
    poisoned: list[DeadLetter] = field(default_factory=list)
    """Events the write isolated and dead-lettered (filled by the write)."""

    @property
    def applied(self) -> int:
        """Events applied (once written)."""
        return len(self.parsed.events) - len(self.poisoned)

    @property
    def dead_lettered(self) -> int:
        """Records dead-lettered (once written)."""
        return len(self.parsed.dead) + len(self.poisoned)


class Projector:
    """Applies batches to the raw states and derives read models and transitions.

    ``cache_bytes`` bounds the decoded raw states (90 %) and resolved person ids (10 %) the
    projector keeps in memory (``TENURE_PROJECTOR_CACHE_MB``).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        publisher: EventPublisher,
        *,
        allowed_lateness: timedelta,
        config: LifecycleConfig = DEFAULT_CONFIG,
        derive_budget_s: float = 0.5,
        derive_chunk: int = 500,
        live_aggregates: bool = True,
        aggregates_in_derive: bool = True,
        cache_bytes: int = DEFAULT_PROJECTOR_CACHE_MB << 20,
        audiences: Definitions = stored,
        audience_stage: bool = True,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.allowed_lateness = allowed_lateness
        self.config = config
        self.derive_budget_s = derive_budget_s
        self.derive_chunk = derive_chunk
        self.live_aggregates = live_aggregates  # False: benchmarks measure without the stage
        self.aggregates_in_derive = aggregates_in_derive
        """False: :meth:`derive` leaves the aggregates stage to the caller, who runs
        :meth:`refresh_aggregates` on its own cadence (the worker does, in its own thread,
        so the survival and churn drains never delay person rows)."""
        self.totals = ProjectorTotals()
        self._totals_lock = threading.Lock()
        self.carried_limit: int | None = None
        """The pass size the next adaptive slice starts at when the last slice ended on its
        budget with a full pass (the backlog was still long); ``None``: :data:`FIRST_PASS`."""
        raw_bytes = int(cache_bytes * RAW_STATES_SHARE)
        self.caches = RawCaches(raw_bytes)
        self.refs = PersonRefs(cache_bytes - raw_bytes)
        self.last_write_s = 0.0
        self.dead_letters = DeadLetterSink("projector", publisher)
        self.derive_dead_letters = DeadLetterSink("derive", publisher)
        self.audiences = AudienceStage(audiences)
        """Live audience membership (``tenure/projection/audiences.py``); ``audiences``
        gives the definitions (default: the stored current ones)."""
        self.audience_stage = audience_stage  # False: TENURE_AUDIENCES=off, no stage at all

    def _retrying(self, work: Any) -> Any:
        """Run ``work`` with a pooled connection, again after a deadlock or serialization
        failure (:func:`~tenure.storage.connection.retry_conflicts`, 10 tries).

        A lost connection is tried once more at once, after the pool has dropped its dead
        connections (``ConnectionPool.check``): a database that restarted, or that closed
        idle connections, costs one failed attempt, not a wait. If that fails too, the
        error propagates: a database that is away is waited out by whoever runs this stage
        (the batch loop, the worker's tasks), in the one place that waits
        (:func:`tenure.eventlog.transient.until_transient_passes`). Data errors propagate
        at once (the caller isolates them)."""

        def attempt() -> Any:
            try:
                with self.pool.connection() as conn:
                    return work(conn)
            except CONNECTION_LOST as exc:
                if is_poison(exc):
                    raise
                log.warning(
                    "database connection lost (%s); trying once more on a live one",
                    type(exc).__name__,
                )
                self.pool.check()
            with self.pool.connection() as conn:
                return work(conn)

        return retry_conflicts(attempt, what="projector")

    def apply(self, records: Sequence[IncomingRecord]) -> ApplyResult:
        """Apply a batch durably (dead letters acknowledged first); return what changed."""
        return self.apply_parsed(parse_records(records))

    def apply_parsed(self, batch: ParsedBatch) -> ApplyResult:
        """Apply a decoded batch durably (dead letters acknowledged first)."""
        return self.write(self.prepare(batch))

    def prepare(self, batch: ParsedBatch) -> PreparedParse:
        """The CPU work of applying a decoded batch (see :func:`prepare_batch`), after its
        person ids are resolved (tokens -> ids; a query only for tokens not cached).

        A batch holding an event the codec cannot encode is left unprepared: :meth:`write`
        isolates it.
        """
        people = self.refs.resolve(self.pool, batch.events)
        if people.events is not batch.events:
            batch = replace(batch, events=people.events)
        return PreparedParse(batch, self._prepared(batch.events, batch), people)

    def _prepared(self, events: list[DomainEvent], batch: ParsedBatch) -> PreparedBatch | None:
        """``events`` prepared for writing, or ``None`` when one of them is poison."""
        try:
            return prepare_batch(events, batch.progress, self.caches, batch.offsets)
        except Exception as exc:
            if not is_poison(exc):
                raise
            return None

    def _purge(self, erasures: Mapping[str, datetime], linked: Mapping[str, datetime]) -> None:
        """Rename erased humans to their tokens in Postgres before their erasure is applied
        (:mod:`tenure.projection.erasure`)."""
        result = self._retrying(
            lambda conn: purge(conn, self.refs.pseudonymiser(conn), erasures, linked=linked)
        )
        self.refs.forget(result.tokens)

    def write(self, prepared: PreparedParse) -> ApplyResult:
        """Write a prepared batch durably, with its dead letters (topic and table).

        If the batch fails on poison events (a value the codec or Postgres cannot hold),
        they are isolated (:func:`~tenure.eventlog.isolation.isolate`, one savepoint per
        part) and dead-lettered, and every other event is applied, in one transaction.
        """
        batch = prepared.parsed
        self.dead_letters.publish(batch.dead)
        prepared.poisoned.clear()

        people = prepared.people
        if people is not None and (people.erasures or people.linked):
            self._purge(people.erasures, people.linked)

        def work(conn: psycopg.Connection[Any]) -> ApplyResult:
            with conn.transaction():
                # the erasure lock, shared, as the transaction's first statement
                events = batch.events if people is None else self.refs.hold(conn, people)
                self.dead_letters.store(conn, batch.dead)
                ready = prepared.batch
                if events is not batch.events:  # ids erased since the batch was resolved
                    ready = self._prepared(events, batch)
                if ready is not None:
                    try:
                        with conn.transaction():
                            return write_batch(conn, ready)
                    except Exception as exc:
                        if not is_poison(exc):
                            raise
                return self._write_isolating(conn, prepared, events)

        started = time.perf_counter()
        result: ApplyResult = self._retrying(work)
        self.last_write_s = time.perf_counter() - started
        self.dead_letters.count([*batch.dead, *prepared.poisoned])
        self.totals.applied += prepared.applied
        self.totals.dead_lettered += prepared.dead_lettered
        return result

    def _write_isolating(
        self, conn: psycopg.Connection[Any], prepared: PreparedParse, events: list[DomainEvent]
    ) -> ApplyResult:
        """Apply the batch's ``events`` (as resolved for this transaction) part by part in
        savepoints, isolating poison events; dead-letter them (table, then topic, before the
        transaction commits)."""
        batch = prepared.parsed
        sources = batch.sources
        totals = [0, 0, 0, 0, 0]

        def attempt(part: Sequence[int]) -> None:
            sub = prepare_batch([events[i] for i in part], {}, self.caches)
            with conn.transaction():
                done = write_batch(conn, sub)
            for n, value in enumerate(astuple(done)):
                totals[n] += value

        poisoned = isolate(list(range(len(events))), attempt)
        letters = [
            DeadLetter(sources[p.item].key, sources[p.item].value or b"", p.category, p.reason,
                       "", origin(sources[p.item]))
            for p in poisoned
        ]  # fmt: skip
        failed = {p.item for p in poisoned}
        progress: dict[Partition, datetime] = {}
        for i, (event, r) in enumerate(zip(events, sources, strict=True)):
            where = (r.topic, r.partition)
            if i not in failed and (where not in progress or event.at > progress[where]):
                progress[where] = event.at
        record_progress(conn, progress, batch.offsets)
        self.dead_letters.store(conn, letters)
        self.dead_letters.publish(letters)
        prepared.poisoned[:] = letters
        return ApplyResult(*totals)

    def derive(self, budget_s: float | None = None, chunk: int | None = None) -> DeriveResult:
        """Run derive passes until the queues are empty or the time budget is spent.

        ``chunk`` is how many persons and devices one pass claims. Without it, passes
        adapt to the backlog: the first claims :data:`FIRST_PASS` keys and each pass that
        found its limit full doubles it, up to the projector's ``derive_chunk`` (a short
        queue is derived in small, quick passes; a long one in large, cheaper ones). A
        slice that ran out of budget while its passes still came back full leaves its next
        pass size to the next slice (:attr:`carried_limit`), so a long backlog is not
        started small again every slice; a slice that found its pass short starts the next
        one small again.
        """
        with self.pool.connection() as guard:
            person_pseudonyms.lock_session_shared(guard)  # no purge while deriving
            try:
                return self._derive(budget_s, chunk)
            finally:
                person_pseudonyms.unlock_session_shared(guard)

    def _derive(self, budget_s: float | None, chunk: int | None) -> DeriveResult:
        deadline = time.monotonic() + (self.derive_budget_s if budget_s is None else budget_s)
        adaptive = chunk is None
        if chunk is not None:
            limit = chunk
        else:
            limit = min(self.carried_limit or FIRST_PASS, self.derive_chunk)
        persons = devices = found = requeued = 0
        waits: list[KeyWait] = []
        while True:
            result = self._derive_pass(limit)
            persons += result.persons
            devices += result.devices
            found += result.transitions
            requeued += result.requeued
            waits += result.waited_s
            full = max(result.persons, result.devices) >= limit
            if adaptive and full:
                limit = min(limit * 2, self.derive_chunk)
            if (result.persons == 0 and result.devices == 0) or time.monotonic() > deadline:
                break
        if adaptive:  # a plain assignment: the worker's derive threads share the hint
            self.carried_limit = limit if full else None
        with self._totals_lock:  # the worker derives in more than one thread
            self.totals.persons_derived += persons
            self.totals.devices_derived += devices
        if self.aggregates_in_derive:
            self._refresh_aggregates()
        return DeriveResult(persons, devices, found, requeued, tuple(waits))

    def refresh_aggregates(self) -> int:
        """Bring the survival aggregates and the churn model up to date with ``persons``
        (the erasure lock held shared); return persons moved."""
        with self.pool.connection() as guard:
            person_pseudonyms.lock_session_shared(guard)  # no purge while draining
            try:
                return self._refresh_aggregates()
            finally:
                person_pseudonyms.unlock_session_shared(guard)

    def _refresh_aggregates(self) -> int:
        if not self.live_aggregates:
            return 0
        return survival_stage.refresh(self.pool, self.allowed_lateness, self.config)

    def _derive_pass(self, limit: int) -> DeriveResult:
        """One derive pass; a pass failing on a key it cannot derive is done again key by
        key (:func:`~tenure.eventlog.isolation.isolate`), the failing keys dead-lettered."""
        try:
            result: DeriveResult = self._retrying(
                lambda conn: derive_pass(
                    conn,
                    allowed_lateness=self.allowed_lateness,
                    config=self.config,
                    limit=limit,
                    caches=self.caches,
                )
            )
            return result
        except Exception as exc:
            if not is_poison(exc):
                raise
            return self._derive_isolating(limit)

    def _derive_isolating(self, limit: int) -> DeriveResult:
        with self.pool.connection() as conn:
            keys = queued_keys(conn, limit)
        done: list[DeriveResult] = []

        def attempt(part: Sequence[QueuedKey]) -> None:
            done.append(
                self._retrying(
                    lambda conn: derive_keys(
                        conn,
                        part,
                        allowed_lateness=self.allowed_lateness,
                        config=self.config,
                        caches=self.caches,
                    )
                )
            )

        poisoned = isolate(keys, attempt)
        letters = [key_dead_letter(p.item, p.category, p.reason) for p in poisoned]
        self.derive_dead_letters.publish(letters)

        def park(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                unqueue(conn, [p.item for p in poisoned])
                self.derive_dead_letters.store(conn, letters)

        self._retrying(park)
        self.derive_dead_letters.count(letters)
        return DeriveResult(
            sum(r.persons for r in done),
            sum(r.devices for r in done),
            sum(r.transitions for r in done),
            sum(r.requeued for r in done),
            tuple(w for r in done for w in r.waited_s),
        )

    def publish_transitions(self, turned: Callable[[], None] = _nothing) -> int:
        """Publish pending transitions, then the changed persons and the audience changes;
        return how many transitions. ``turned`` is called after every page (a follower
        process's liveness heartbeat: a long catch-up is many pages, each a turn)."""
        total = 0
        while True:
            turned()
            n: int = self._retrying(  # another relay's move: a serialization failure
                lambda conn: publish_pending(
                    conn,
                    self.publisher,
                    by_kind=self.totals.by_kind,
                    person_ref=self.refs.pseudonymiser(conn).token,
                )
            )
            total += n
            if n == 0:
                break
        self.totals.transitions_published += total
        self.publish_persons(turned)
        self.follow_audiences(turned)
        return total

    def publish_persons(self, turned: Callable[[], None] = _nothing) -> int:
        """Publish changed persons to ``tenure.persons.v1``; return how many records
        (``turned``: as :meth:`publish_transitions`)."""
        total = 0
        while True:
            turned()
            n: int = self._retrying(
                lambda conn: publish_person_changes(
                    conn, self.publisher, self.refs.pseudonymiser(conn).token
                )
            )
            total += n
            if n == 0:
                return total

    def follow_audiences(self, turned: Callable[[], None] = _nothing) -> int:
        """Bring audience membership up to the persons change feed and the watermark, then
        publish the membership changes to ``tenure.audiences.v1``; return changes written
        (``turned``: as :meth:`publish_transitions`)."""
        if not self.audience_stage:
            return 0
        changes = 0
        with self.pool.connection() as guard:
            person_pseudonyms.lock_session_shared(guard)  # no purge while evaluating
            try:
                run = partial(self.audiences.run_pass, lateness=self.allowed_lateness)
                while (done := self._retrying(run)).evaluated:  # conflicts retried
                    changes += done.changes
                    turned()
            finally:
                person_pseudonyms.unlock_session_shared(guard)
        while True:
            turned()
            with self.pool.connection() as conn:
                n = publish_changes(conn, self.publisher, self.refs.pseudonymiser(conn).token)
            self.audiences.totals.published += n
            if n == 0:
                return changes

    def project(self, records: Sequence[IncomingRecord]) -> ApplyResult:
        """Apply a batch, then derive within the budget and publish transitions."""
        result = self.apply(records)
        self.derive()
        self.publish_transitions()
        return result

    def settle(
        self,
        budget_s: float = 2.0,
        chunk: int | None = None,
        stale_limit: int | None = None,
        *,
        publish: bool = True,
    ) -> DeriveResult:
        """Time-driven work: re-derive the persons whose schedule the watermark reached
        (``persons.next_change_at``); publish (unless ``publish`` is False: the worker
        publishes transitions in a task of their own, off the derive path).

        ``stale_limit`` bounds how many due persons are queued per call (default: all).
        """
        with self.pool.connection() as conn:
            person_pseudonyms.lock_session_shared(conn)  # reads persons rows: no purge now
            try:
                with conn.transaction():
                    queue_due_persons(conn, self.allowed_lateness, stale_limit)
            finally:
                person_pseudonyms.unlock_session_shared(conn)
        result = self.derive(budget_s, chunk)
        if publish:
            self.publish_transitions()
        return result

    def pending_deltas(self) -> tuple[int, int]:
        """Device and person delta rows not yet compacted."""
        with self.pool.connection() as conn:
            return derive_queue.pending_deltas(conn)

    def audience_sizes(self) -> dict[tuple[str, str], int]:
        """Members per (audience, state: ``contactable`` or the suppression reason)."""
        with self.pool.connection() as conn:
            return audience_members.sizes(conn)

    def backlog(self) -> tuple[int, int]:
        """Queued persons and devices waiting to be derived."""
        with self.pool.connection() as conn:
            return derive_queue.backlog(conn)
