"""The archiver: canonical topics -> Postgres event archive, offsets committed after the rows.

Every record read ends in exactly one place: archived (new row), duplicate (its
``(source, id)`` is already archived) or dead-lettered (not an event envelope, or a row
Postgres cannot hold, e.g. an id over the identity index's row limit: such a row is
isolated in a savepoint and the rest of its batch archived). Offsets are committed only
after the rows and the dead letters (table and topic) are durable, so a crash re-reads and
the unique key absorbs the re-delivery; a transient error (connection, deadlock, a broker
that did not acknowledge a dead letter) retries the batch.

The archiver consumes with the loop every worker shares
(:class:`tenure.eventlog.batch_loop.BatchLoop`); :class:`ArchiveBatches` is its handler:
records are read into rows while the previous batch is written.

The transaction that archives a record also deletes its pending copy from the ingest ledger
(``ingest_pending``): from then on the archive alone holds the event. Every
:data:`TIDY_SECONDS` the archiver sweeps the pending copies it could not see when it
archived them and vacuums the small queue (``docs/design/event-storage.md``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mode import Service
from psycopg_pool import ConnectionPool

from streams.archiver import metrics
from streams.archiver.records import to_archive_record
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.eventlog.batch_loop import BatchHandler, BatchLoop, ConsumeSettings, run_until
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import isolate
from tenure.eventlog.publisher import EventPublisher
from tenure.storage import archive, ledger
from tenure.storage.archive import ArchiveRecord
from tenure.storage.convergence import lock_archive_writes

log = logging.getLogger(__name__)

GROUP_ID = "tenure-archiver"
BATCH_MAX = 2000
"""Records per batch at most."""
TIDY_SECONDS = 10.0
"""How often the archiver sweeps and vacuums ``ingest_pending``."""


@dataclass(slots=True)
class ArchiveBatch:
    """A batch read into rows and dead letters; what its write did, once written."""

    rows: list[tuple[ArchiveRecord, Any]]
    """Each row with the record it was read from."""
    unreadable: list[DeadLetter]
    """Records that are not event envelopes."""
    inserted: Counter[str] = field(default_factory=Counter)
    """New rows per topic (set by the write)."""
    dead: list[DeadLetter] = field(default_factory=list)
    """Every dead letter of the batch (set by the write)."""
    archived: list[ArchiveRecord] = field(default_factory=list)
    """Rows archived, new or duplicate (set by the write)."""


class ArchiveBatches(BatchHandler[ArchiveBatch]):
    """The archiver's batch handler: records -> ``event_archive`` rows or dead letters."""

    def __init__(self, pool: ConnectionPool, publisher: EventPublisher) -> None:
        self.pool = pool
        self.dead_letters = DeadLetterSink("archiver", publisher)
        self.totals: Counter[str] = Counter()
        """Records archived, duplicate and dead-lettered (committed batches)."""

    def prepare(self, records: Sequence[Any]) -> ArchiveBatch:
        """Read each record into an archive row, or a dead letter if it is no event."""
        rows: list[tuple[ArchiveRecord, Any]] = []
        unreadable: list[DeadLetter] = []
        for m in records:
            read = to_archive_record(m.topic, m.partition, m.offset, m.key, m.value)
            if isinstance(read, DeadLetter):
                unreadable.append(read)
            else:
                rows.append((read, m))
        return ArchiveBatch(rows, unreadable)

    def write(self, prepared: ArchiveBatch) -> None:
        """Archive the batch in one transaction (see :meth:`_archive`)."""
        started = time.perf_counter()
        prepared.inserted, prepared.dead, prepared.archived = self._archive(
            prepared.rows, prepared.unreadable
        )
        metrics.WRITE_SECONDS.observe(time.perf_counter() - started)

    def committed(self, records: Sequence[Any], prepared: ArchiveBatch) -> None:
        """Count the batch: every record archived, duplicate or durably dead-lettered."""
        self.dead_letters.count(prepared.dead)
        self._count(prepared.archived, prepared.inserted, prepared.dead)
        self._observe_latency(prepared.archived)
        metrics.BATCH_RECORDS.observe(len(records))

    def tidy(self) -> int:
        """Delete the pending ledger copies of archived events that the batches could not
        see yet (their ingest transaction committed after the archiver read the record),
        then vacuum ``ingest_pending`` so its pages are reused; return how many."""
        with self.pool.connection() as conn:
            conn.autocommit = True  # VACUUM runs outside a transaction
            try:
                return ledger.tidy(conn)
            finally:
                conn.autocommit = False

    async def tidy_once(self) -> None:
        """:meth:`tidy` in a thread; a failure is logged and tried again next time."""
        try:
            await asyncio.to_thread(self.tidy)
        except Exception as exc:
            log.warning("tidying the ingest ledger failed (%s); retrying later", exc)

    def _archive(
        self, rows: list[tuple[ArchiveRecord, Any]], dead: list[DeadLetter]
    ) -> tuple[Counter[str], list[DeadLetter], list[ArchiveRecord]]:
        """Archive ``rows`` in one transaction, each failing row isolated (savepoints) and
        dead-lettered with ``dead`` in the same transaction; return the new rows per topic,
        every dead letter and the rows archived (new or duplicate). A transient error rolls
        everything back and propagates."""
        inserted: Counter[str] = Counter()
        with self.pool.connection() as conn, conn.transaction():
            lock_archive_writes(conn)

            def attempt(part: Sequence[tuple[ArchiveRecord, Any]]) -> None:
                with conn.transaction():  # a savepoint: a poison row undoes only its part
                    new = archive.append(conn, [r for r, _ in part])
                    ledger.release(conn, [(r.source, r.event_id) for r, _ in part])
                inserted.update(new)

            poisoned = isolate(rows, attempt)
            dead = dead + [
                DeadLetter(m.key, m.value or b"", p.category, p.reason, "",
                           f"{m.topic}/{m.partition}/{m.offset}")
                for p in poisoned for m in (p.item[1],)
            ]  # fmt: skip
            self.dead_letters.store(conn, dead)
            self.dead_letters.publish(dead)  # acknowledged before the rows commit
        failed = {id(p.item[0]) for p in poisoned}
        return inserted, dead, [r for r, _ in rows if id(r) not in failed]

    def _count(
        self, rows: list[ArchiveRecord], inserted: Counter[str], dead: list[DeadLetter]
    ) -> None:
        read = Counter(r.topic for r in rows)
        for topic, total in read.items():
            new = inserted.get(topic, 0)
            metrics.RECORDS.labels(topic, "archived").inc(new)
            metrics.RECORDS.labels(topic, "duplicate").inc(total - new)
            self.totals["archived"] += new
            self.totals["duplicate"] += total - new
        for d in dead:
            metrics.RECORDS.labels(d.origin.rsplit("/", 2)[0], "dead_lettered").inc()
            self.totals["dead_lettered"] += 1

    @staticmethod
    def _observe_latency(rows: list[ArchiveRecord]) -> None:
        """Latency from event time and from ingest time, once the rows are durable."""
        now = datetime.now(UTC)
        for row in rows:
            metrics.EVENT_AGE.observe(max(0.0, (now - row.event_time).total_seconds()))
            if row.ingested_at is not None:
                latency = (now - row.ingested_at).total_seconds()
                metrics.INGEST_LATENCY.observe(max(0.0, latency))


class _LedgerTidy(Service):
    """Runs :meth:`ArchiveBatches.tidy` every :data:`TIDY_SECONDS` (outside faust)."""

    def __init__(self, batches: ArchiveBatches, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batches = batches

    @Service.timer(TIDY_SECONDS)
    async def _tidy(self) -> None:
        await self.batches.tidy_once()


def consume_settings(
    bootstrap: str, group_id: str = GROUP_ID, batch_max: int = BATCH_MAX
) -> ConsumeSettings:
    """How the archiver consumes: the canonical topics, in ``group_id``."""
    return ConsumeSettings(bootstrap, group_id, CANONICAL_TOPICS, "archiver", batch_max=batch_max)


class Archiver:
    """One archiver in this process (tests, benchmarks); the worker process runs the same
    handler and loop under faust (:mod:`streams.archiver.app`). Run several in the same
    group to share partitions."""

    def __init__(
        self,
        bootstrap: str,
        pool: ConnectionPool,
        *,
        group_id: str = GROUP_ID,
        batch_max: int = BATCH_MAX,
    ) -> None:
        self.pool = pool
        self.group_id = group_id
        self.publisher = EventPublisher(bootstrap)
        self.batches = ArchiveBatches(pool, self.publisher)
        self.settings = consume_settings(bootstrap, group_id, batch_max)
        self.failed = False
        """True when a batch failed for a reason that is not transient (the run stopped)."""

    @property
    def totals(self) -> Counter[str]:
        """Records archived, duplicate and dead-lettered so far."""
        return self.batches.totals

    def run(self, stop: threading.Event) -> None:
        """Archive until ``stop`` is set (or a batch fails for good: :attr:`failed`)."""

        def failed() -> None:
            self.failed = True
            stop.set()

        run_until(stop, BatchLoop(self.batches, self.settings, failed), _LedgerTidy(self.batches))

    def close(self) -> None:
        """Close the producer (the consumer left the group when :meth:`run` returned)."""
        self.publisher.close()
