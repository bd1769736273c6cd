"""``archiver``: records/s from the topics to committed ``event_archive`` rows vs a raw poll.

``size`` ingest-shaped records (the realistic mix, as the ingest service publishes them) are
produced to the canonical topics of a fresh broker. Baseline: a kafka-python consumer with
the archiver's consumer settings and a fresh group polls them all (no decoding, no commit).
Measured: the archiver's handler on the batch loop every worker shares (its own fresh group,
fresh database) runs in a thread until every record is archived and its offsets committed;
each committed batch is time-stamped. Both clocks start when the first batch has
arrived (the group join is excluded) and count the records after it.
``ratio`` = archiver records/s / raw poll records/s.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaConsumer
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from bench.events import event_mix
from bench.records import ingest_records, produce_all
from bench.result import Result, rate
from bench.servers import CpuMeter, Servers, broker_pid
from streams.archiver.worker import ArchiveBatch, ArchiveBatches, consume_settings
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.eventlog.batch_loop import BatchLoop, run_until
from tenure.eventlog.publisher import EventPublisher
from tenure.storage import archive

NAME = "archiver"
DEFAULT_SIZE = 50_000
TIMEOUT_S = 150.0


def _drain(
    step: Callable[[], int],
    done: Callable[[int], bool],
    on_start: Callable[[], None] = lambda: None,
) -> tuple[int, float, int]:
    """Call ``step`` until ``done(records read so far)``.

    Returns ``(records counted, seconds, records in the first batch)``: the clock starts
    (and ``on_start`` is called) when the first non-empty batch is done, so the group join
    is not timed.
    """
    deadline = time.monotonic() + TIMEOUT_S
    total = first = 0
    started = 0.0
    while not done(total):
        if time.monotonic() > deadline:
            raise TimeoutError(f"read only {total} records in {TIMEOUT_S:.0f} s")
        n = step()
        if n and not total:
            on_start()
            started = time.perf_counter()
            first = n
        total += n
    return total - first, time.perf_counter() - started, first


class _TimedBatches(ArchiveBatches):
    """The archiver's handler, noting when each batch was committed and how many records it
    held (``on_first`` is called before the first is counted)."""

    def __init__(self, pool: ConnectionPool, publisher: EventPublisher) -> None:
        super().__init__(pool, publisher)
        self.stamps: list[tuple[float, int]] = []
        self.on_first: Callable[[], None] = lambda: None

    def committed(self, records: Sequence[Any], prepared: ArchiveBatch) -> None:
        """Count the batch, then note it."""
        if not self.stamps:
            self.on_first()
        super().committed(records, prepared)
        self.stamps.append((time.perf_counter(), len(records)))


def _write_seconds() -> float:
    return REGISTRY.get_sample_value("tenure_archive_write_seconds_sum") or 0.0


def run(servers: Servers, size: int = DEFAULT_SIZE, max_poll_records: int = 2000) -> Result:
    """Measure one archiver and the raw-poll baseline on the same topics."""
    broker = servers.fresh_broker()
    database_url = servers.fresh_database()
    try:
        produce_s = produce_all(broker.bootstrap, ingest_records(event_mix(size)))

        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap,
            group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=200,
        )
        consumer.subscribe(list(CANONICAL_TOPICS))

        def poll() -> int:
            return sum(len(m) for m in consumer.poll(timeout_ms=500).values())

        try:
            raw_n, raw_s, _ = _drain(poll, lambda total: total >= size)
        finally:
            consumer.close()

        with ConnectionPool(database_url, min_size=1, max_size=2) as pool:
            publisher = EventPublisher(broker.bootstrap)
            worker = _TimedBatches(pool, publisher)
            settings = consume_settings(
                broker.bootstrap, f"bench-archiver-{uuid.uuid4().hex[:8]}", max_poll_records
            )
            stop, failed = threading.Event(), threading.Event()

            def on_failure() -> None:
                failed.set()
                stop.set()

            loop = BatchLoop(worker, settings, on_failure=on_failure)
            running = threading.Thread(target=run_until, args=(stop, loop), daemon=True)
            meter = CpuMeter(
                {
                    "broker": broker_pid(broker),
                    "postgres": servers.postgres.process.pid if servers.postgres.process else None,
                },
                own_name="archiver",
            )
            write_before = [0.0]

            def start() -> None:
                write_before[0] = _write_seconds()
                meter.start()

            worker.on_first = start
            try:
                running.start()
                # Done when every record is a committed row (a re-delivered record is read
                # but adds no row, so count rows, not records read).
                deadline = time.monotonic() + TIMEOUT_S
                while worker.totals["archived"] < size:
                    if failed.is_set():
                        raise RuntimeError("the archiver stopped on a failed batch")
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"archived only {worker.totals['archived']} records")
                    time.sleep(0.01)
                cpu = meter.stop()
                write_s = _write_seconds() - write_before[0]
                # The clock runs from the first committed batch to the last.
                first = worker.stamps[0][1]
                arch_n = sum(n for _, n in worker.stamps[1:])
                arch_s = worker.stamps[-1][0] - worker.stamps[0][0]
            finally:
                stop.set()
                running.join(timeout=30)
                publisher.close()
            with pool.connection() as conn:
                rows = archive.count(conn)
        if rows != size:
            raise RuntimeError(f"event_archive holds {rows} rows, expected {size}")
    finally:
        servers.stop_broker(broker)

    arch_eps = arch_n / arch_s
    raw_eps = raw_n / raw_s
    return Result(
        name=NAME,
        params={
            "size": size,
            "max_poll_records": max_poll_records,
            "broker": servers.broker_kind,
            "partitions": 4,
            "topics": len(CANONICAL_TOPICS),
        },
        measured={
            "records_per_s": rate(arch_n, arch_s),
            "seconds": round(arch_s, 3),
            "postgres_write_share": round(write_s / (arch_s + 1e-9), 3),
            "postgres_write_s": round(write_s, 3),
            "cpu_seconds": cpu,
        },
        baseline={
            "what": "kafka-python poll, archiver consumer settings, fresh group, same topics",
            "records_per_s": rate(raw_n, raw_s),
            "seconds": round(raw_s, 3),
            "produce_stream_records_per_s": rate(size, produce_s),
        },
        ratio=arch_eps / raw_eps,
        ratio_meaning="archiver records/s / raw poll records/s (higher is better, <=1)",
        notes={
            "timed_records": arch_n,
            "archiver_totals": dict(worker.totals),
            "first_batch_excluded": first,
            "postgres_write_share": "INSERT .. unnest + COMMIT (tenure_archive_write_seconds)"
            " / timed wall seconds",
        },
    )
