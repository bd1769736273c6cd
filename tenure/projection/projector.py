"""The live projector's work per batch of records, independent of the stream runtime.

``project`` applies a batch (one transaction, retried on deadlock), then runs derive
passes for up to a time budget and publishes pending transitions; ``settle`` does the
time-driven part and the derive work the apply stage queued. The worker in
``streams/projector`` calls ``apply_parsed`` (hot path) and ``settle`` (derive task) from
worker threads; tests and benchmarks call them directly. The raw states the process wrote
or read stay cached (``caches``), checked against each row's version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
import psycopg
from psycopg_pool import ConnectionPool

from tenure.analytics.live import stage as survival_stage
from tenure.domain.config import LifecycleConfig
from tenure.domain.events import DomainEvent, parse_event
from tenure.domain.view import DEFAULT_CONFIG
from tenure.eventlog.deadletter import DeadLetter
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.apply import (
    ApplyResult,
    Partition,
    PreparedBatch,
    prepare_batch,
    write_batch,
)
from tenure.projection.derive import DeriveResult, derive_pass, queue_stale_persons
from tenure.projection.erasure import purge
from tenure.projection.outbox import publish_pending
from tenure.projection.person_refs import PersonRefs, ResolvedBatch
from tenure.projection.raw_cache import RawCaches
from tenure.storage import person_pseudonyms

log = logging.getLogger(__name__)

RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    """One Kafka record of a canonical topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


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
class ParsedBatch:
    """A batch of records decoded: its events, the latest event time per partition, and
    the records that are not events (to dead-letter)."""

    events: list[DomainEvent]
    progress: dict[Partition, datetime]
    dead: list[DeadLetter]

    @property
    def size(self) -> int:
        """Records in the batch."""
        return len(self.events) + len(self.dead)


class RecordLike(Protocol):
    """What :func:`parse_records` reads of a record (an :class:`IncomingRecord`, or a
    consumer's record as fetched)."""

    @property
    def topic(self) -> str: ...  # noqa: D102
    @property
    def partition(self) -> int: ...  # noqa: D102
    @property
    def offset(self) -> int: ...  # noqa: D102
    @property
    def key(self) -> bytes | None: ...  # noqa: D102
    @property
    def value(self) -> bytes | None: ...  # noqa: D102


def parse_records(records: Iterable[RecordLike]) -> ParsedBatch:
    """Decode records into domain events, the latest event time per partition, dead letters."""
    events: list[DomainEvent] = []
    progress: dict[Partition, datetime] = {}
    dead: list[DeadLetter] = []
    loads = orjson.loads
    for r in records:
        try:
            event = parse_event(loads(r.value or b""))
        except (ValueError, KeyError, TypeError) as exc:
            dead.append(
                DeadLetter(r.key, r.value or b"", "projection", f"cannot project: {exc!r}", "",
                           f"{r.topic}/{r.partition}/{r.offset}")
            )  # fmt: skip
            continue
        events.append(event)
        where = (r.topic, r.partition)
        latest = progress.get(where)
        if latest is None or event.at > latest:
            progress[where] = event.at
    return ParsedBatch(events, progress, dead)


@dataclass(frozen=True, slots=True)
class PreparedParse:
    """A decoded batch and its prepared writes."""

    parsed: ParsedBatch
    batch: PreparedBatch
    people: ResolvedBatch | None = None
    """How the batch's person ids were resolved (re-checked when it is written)."""


class Projector:
    """Applies batches to the raw states and derives read models and transitions."""

    def __init__(
        self,
        pool: ConnectionPool,
        publisher: EventPublisher,
        *,
        allowed_lateness: timedelta,
        config: LifecycleConfig = DEFAULT_CONFIG,
        derive_budget_s: float = 0.5,
        derive_chunk: int = 500,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.allowed_lateness = allowed_lateness
        self.config = config
        self.derive_budget_s = derive_budget_s
        self.derive_chunk = derive_chunk
        self.totals = ProjectorTotals()
        self.caches = RawCaches()
        self.refs = PersonRefs()
        self.last_write_s = 0.0

    def _retrying(self, work: Any) -> Any:
        for attempt in range(1, 11):
            try:
                with self.pool.connection() as conn:
                    return work(conn)
            except RETRYABLE as exc:
                log.info("retrying after %s (attempt %d)", type(exc).__name__, attempt)
                time.sleep(0.05 * attempt)
        raise RuntimeError("gave up after 10 deadlocks or serialization failures")

    def apply(self, records: Sequence[IncomingRecord]) -> ApplyResult:
        """Apply a batch durably (dead letters acknowledged first); return what changed."""
        return self.apply_parsed(parse_records(records))

    def apply_parsed(self, batch: ParsedBatch) -> ApplyResult:
        """Apply a decoded batch durably (dead letters acknowledged first)."""
        return self.write(self.prepare(batch))

    def prepare(self, batch: ParsedBatch) -> PreparedParse:
        """The CPU work of applying a decoded batch (see :func:`prepare_batch`), after its
        person ids are resolved (tokens -> ids; a query only for tokens not cached)."""
        people = self.refs.resolve(self.pool, batch.events)
        if people.events is not batch.events:
            batch = replace(batch, events=people.events)
        return PreparedParse(
            batch, prepare_batch(batch.events, batch.progress, self.caches), people
        )

    def _purge(self, erasures: Mapping[str, datetime], linked: Mapping[str, datetime]) -> None:
        """Rename erased humans to their tokens in Postgres before their erasure is applied
        (:mod:`tenure.projection.erasure`)."""
        result = self._retrying(
            lambda conn: purge(conn, self.refs.pseudonymiser(conn), erasures, linked=linked)
        )
        self.refs.forget(result.tokens)

    def write(self, prepared: PreparedParse) -> ApplyResult:
        """Write a prepared batch durably (dead letters acknowledged first)."""
        batch = prepared.parsed
        if batch.dead:
            self.publisher.publish([d.to_record() for d in batch.dead])
            self.totals.dead_lettered += len(batch.dead)

        people = prepared.people
        if people is not None and (people.erasures or people.linked):
            self._purge(people.erasures, people.linked)

        def work(conn: psycopg.Connection[Any]) -> ApplyResult:
            with conn.transaction():
                if people is None:
                    return write_batch(conn, prepared.batch)
                events = self.refs.hold(conn, people)  # erasure lock, shared; first statement
                if events is people.events:
                    return write_batch(conn, prepared.batch)
                return write_batch(conn, prepare_batch(events, batch.progress, self.caches))

        started = time.perf_counter()
        result: ApplyResult = self._retrying(work)
        self.last_write_s = time.perf_counter() - started
        self.totals.applied += len(batch.events)
        return result

    def derive(self, budget_s: float | None = None, chunk: int | None = None) -> DeriveResult:
        """Run derive passes until the queues are empty or the time budget is spent.

        ``chunk`` (default: the projector's) is how many persons and devices one pass
        claims; smaller chunks keep a pass within a small budget.
        """
        with self.pool.connection() as guard:
            person_pseudonyms.lock_session_shared(guard)  # no purge while deriving
            try:
                return self._derive(budget_s, chunk)
            finally:
                person_pseudonyms.unlock_session_shared(guard)

    def _derive(self, budget_s: float | None, chunk: int | None) -> DeriveResult:
        deadline = time.monotonic() + (self.derive_budget_s if budget_s is None else budget_s)
        limit = self.derive_chunk if chunk is None else chunk
        persons = devices = found = requeued = 0
        while True:
            result: DeriveResult = self._retrying(
                lambda conn: derive_pass(
                    conn,
                    allowed_lateness=self.allowed_lateness,
                    config=self.config,
                    limit=limit,
                    caches=self.caches,
                )
            )
            persons += result.persons
            devices += result.devices
            found += result.transitions
            requeued += result.requeued
            if (result.persons == 0 and result.devices == 0) or time.monotonic() > deadline:
                break
        self.totals.persons_derived += persons
        self.totals.devices_derived += devices
        survival_stage.refresh(self.pool, self.allowed_lateness, self.config)  # live aggregates
        return DeriveResult(persons, devices, found, requeued)

    def publish_transitions(self) -> int:
        """Publish pending transitions; return how many."""
        total = 0
        while True:
            with self.pool.connection() as conn:
                n = publish_pending(
                    conn,
                    self.publisher,
                    by_kind=self.totals.by_kind,
                    person_ref=self.refs.pseudonymiser(conn).token,
                )
            total += n
            if n == 0:
                break
        self.totals.transitions_published += total
        return total

    def project(self, records: Sequence[IncomingRecord]) -> ApplyResult:
        """Apply a batch, then derive within the budget and publish transitions."""
        result = self.apply(records)
        self.derive()
        self.publish_transitions()
        return result

    def settle(
        self, budget_s: float = 2.0, chunk: int | None = None, stale_limit: int | None = None
    ) -> DeriveResult:
        """Time-driven work: re-derive persons the watermark has moved past; publish.

        ``stale_limit`` bounds how many stale persons are queued per call (default: all).
        """
        with self.pool.connection() as conn:
            person_pseudonyms.lock_session_shared(conn)  # reads persons rows: no purge now
            try:
                with conn.transaction():
                    queue_stale_persons(conn, self.allowed_lateness, stale_limit)
            finally:
                person_pseudonyms.unlock_session_shared(conn)
        result = self.derive(budget_s, chunk)
        self.publish_transitions()
        return result

    def _count_pair(self, query: str) -> tuple[int, int]:
        with self.pool.connection() as conn:
            row = conn.execute(query).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def pending_deltas(self) -> tuple[int, int]:
        """Device and person delta rows not yet compacted."""
        return self._count_pair(
            "SELECT (SELECT count(*) FROM raw_device_deltas),"
            " (SELECT count(*) FROM raw_person_deltas)"
        )

    def backlog(self) -> tuple[int, int]:
        """Queued persons and devices waiting to be derived."""
        return self._count_pair(
            "SELECT (SELECT count(DISTINCT person_id) FROM dirty_persons),"
            " (SELECT count(DISTINCT device_id) FROM dirty_devices)"
        )
