"""The archiver: canonical topics -> Postgres event archive, offsets committed after the rows.

Every record read ends in exactly one place: archived (new row), duplicate (its
``(source, id)`` is already archived) or dead-lettered (not an event envelope, or a row
Postgres cannot hold, e.g. an id over the identity index's row limit: such a row is
isolated in a savepoint and the rest of its batch archived). Offsets are committed only
after the rows and the dead letters (table and topic) are durable, so a crash re-reads and
the unique key absorbs the re-delivery; a transient error (connection, deadlock) retries
the batch.

The transaction that archives a record also deletes its pending copy from the ingest ledger
(``ingest_pending``): from then on the archive alone holds the event. Every
:data:`TIDY_SECONDS` the archiver sweeps the pending copies it could not see when it
archived them and vacuums the small queue (``docs/design/event-storage.md``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer
from psycopg_pool import ConnectionPool

from streams.archiver import metrics
from streams.archiver.records import to_archive_record
from streams.pipeline_metrics import WORKER_READY
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import isolate
from tenure.eventlog.publisher import EventPublisher
from tenure.runtime import liveness
from tenure.runtime.database import DATABASE_UNAVAILABLE, Backoff
from tenure.storage import archive, ledger
from tenure.storage.archive import ArchiveRecord
from tenure.storage.convergence import lock_archive_writes

log = logging.getLogger(__name__)

GROUP_ID = "tenure-archiver"
TIDY_SECONDS = 10.0
"""How often the archiver sweeps and vacuums ``ingest_pending``."""


class Archiver:
    """One archiver consumer; run several in the same group to share partitions."""

    def __init__(
        self,
        bootstrap: str,
        pool: ConnectionPool,
        *,
        group_id: str = GROUP_ID,
        max_poll_records: int = 2000,
    ) -> None:
        self.pool = pool
        self.group_id = group_id
        self.publisher = EventPublisher(bootstrap)
        self.dead_letters = DeadLetterSink("archiver", self.publisher)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=f"{group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=200,
        )
        self.consumer.subscribe(list(CANONICAL_TOPICS))
        self.totals: Counter[str] = Counter()
        self._tidied_at = time.monotonic()

    def step(self, timeout_ms: int = 500) -> int:
        """Poll one batch, archive it, commit offsets; return how many records it held."""
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        n = sum(len(msgs) for msgs in polled.values())
        if n:
            rows: list[tuple[ArchiveRecord, Any]] = []
            dead: list[DeadLetter] = []
            for msgs in polled.values():
                for m in msgs:
                    read = to_archive_record(m.topic, m.partition, m.offset, m.key, m.value)
                    if isinstance(read, DeadLetter):
                        dead.append(read)
                    else:
                        rows.append((read, m))
            started = time.perf_counter()
            inserted, dead, archived = self._archive(rows, dead)
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
            self.consumer.commit()  # every record is archived or durably dead-lettered
            self.dead_letters.count(dead)
            self._count(archived, inserted, dead)
            self._observe_latency(archived)
            metrics.BATCH_RECORDS.observe(n)
        if time.monotonic() - self._tidied_at >= TIDY_SECONDS:
            self.tidy()
        self._report_lag()
        return n

    def tidy(self) -> int:
        """Delete the pending ledger copies of archived events that the batches could not
        see yet (their ingest transaction committed after the archiver read the record),
        then vacuum ``ingest_pending`` so its pages are reused; return how many."""
        with self.pool.connection() as conn:
            conn.autocommit = True  # VACUUM runs outside a transaction
            try:
                released = ledger.tidy(conn)
            finally:
                conn.autocommit = False
        self._tidied_at = time.monotonic()
        return released

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

    def _report_lag(self) -> None:
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)  # not end_offsets: wrong on the embedded broker
            if high is None:
                continue
            lag = max(0, high - self.consumer.position(tp))
            metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(lag)

    def run(self, stop: threading.Event) -> None:
        """Archive until ``stop`` is set."""
        waits = Backoff()  # while the database is away: wait, retry, report not ready
        WORKER_READY.labels("archiver").set(1)
        while not stop.is_set():
            liveness.LOOP.beat()  # a backoff wait turns the loop too: a database blip is not death
            try:
                self.step()
                if waits.failures:
                    log.warning("the database is back; archiving again")
                    waits.reset()
                    WORKER_READY.labels("archiver").set(1)
            except DATABASE_UNAVAILABLE as exc:
                WORKER_READY.labels("archiver").set(0)
                delay = waits.next_delay()
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                self._rewind()
                stop.wait(delay)
            except Exception:
                log.exception("archiver batch failed; retrying from the last committed offset")
                self._rewind()
                stop.wait(1.0)

    def _rewind(self) -> None:
        """After a failed batch, go back to the committed offsets so nothing is skipped."""
        for tp in self.consumer.assignment():
            committed = self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    def close(self) -> None:
        """Leave the group and close the clients."""
        self.consumer.close()
        self.publisher.close()
