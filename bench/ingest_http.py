"""``ingest_http``: events/s through the real ingest service vs the fastest raw produce.

The ingest service runs as ``tenure serve ingest`` in a subprocess (its own GIL, as in
production) against a fresh broker and a fresh database. ``concurrency`` client threads post
pre-encoded batches of ``batch`` valid events (the realistic mix) and count an event done when
its HTTP reply arrives, i.e. after validation, the ledger claim in Postgres, the publish and
the broker's acknowledgement.

Baselines, same run and same broker: the same records (as the service would publish them)
in the same batches with the same concurrency, each batch acknowledged before the next, sent
by the two producers among the project's dependencies: kafka-python with ``EventPublisher``'s
settings (threads; the producer ingest uses) and aiokafka with the same acks, linger and batch
size (tasks on one loop; not idempotent: the embedded broker refuses aiokafka's
``InitProducerId``). ``ratio`` = ingest events/s / the faster of the two (issue 12: "the
fastest raw produce available in the project's dependencies"); ``notes.ratio_vs_kafka_python``
is against kafka-python alone. kafka-python's one-flush stream is reported as its ceiling.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bench.events import event_mix
from bench.records import RawProducer, ingest_records, produce_all
from bench.result import Result, percentile, rate
from bench.servers import CpuMeter, Servers, broker_pid
from tenure.eventlog.publisher import OutgoingRecord
from tenure.runtime.process import ManagedProcess, free_port
from tenure.storage.tokens import create_token

NAME = "ingest_http"
DEFAULT_SIZE = 20_000
DEFAULT_BATCH = 500
DEFAULT_CONCURRENCY = 3


def _tenure_command() -> list[str]:
    script = Path(sys.executable).with_name("tenure")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tenure.cli.app import main; main()"]


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _run_concurrently(jobs: Sequence[Any], threads: int, work: Callable[[Any], None]) -> float:
    """Run ``work`` on every job from ``threads`` threads; return the wall seconds."""
    lock = threading.Lock()
    pending = list(reversed(jobs))
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not pending or errors:
                    return
                job = pending.pop()
            try:
                work(job)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


class IngestProcess:
    """``tenure serve ingest`` as a child process on a free port."""

    def __init__(self, bootstrap: str, database_url: str, log_dir: Path) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            TENURE_KAFKA_BOOTSTRAP=bootstrap,
            TENURE_DATABASE_URL=database_url,
            TENURE_LOG_LEVEL="WARNING",
        )
        self.process = ManagedProcess(
            "ingest",
            [
                *_tenure_command(),
                "serve",
                "ingest",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            log_dir / "ingest.log",
            env=env,
        )

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the service and wait until ``/healthz`` answers."""
        self.process.start()
        self.process.wait_ready(
            lambda: httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200, 60
        )

    def publish_seconds(self) -> tuple[float, float]:
        """``(sum, count)`` of the service's ``tenure_ingest_publish_seconds`` histogram."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        total = count = 0.0
        for family in text_string_to_metric_families(text):
            if family.name != "tenure_ingest_publish_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    total = sample.value
                elif sample.name.endswith("_count"):
                    count = sample.value
        return total, count

    def stop(self) -> None:
        """Stop the service."""
        self.process.stop(timeout=10)


def _raw_batched(
    bootstrap: str, batches: Sequence[Sequence[Any]], concurrency: int
) -> tuple[float, list[float]]:
    producer = RawProducer(bootstrap)
    latencies: list[float] = []
    try:
        producer.send_batch(batches[0][:1])  # connect and fetch metadata outside the timing

        def work(batch: Sequence[Any]) -> None:
            started = time.perf_counter()
            producer.send_batch(batch)
            latencies.append(time.perf_counter() - started)

        return _run_concurrently(batches, concurrency, work), latencies
    finally:
        producer.close()


def _raw_aiokafka(
    bootstrap: str, batches: Sequence[Sequence[OutgoingRecord]], concurrency: int
) -> tuple[float, list[float]]:
    """The same batches through aiokafka (acks=all, linger 2 ms, 256 KiB batches, as
    ``EventPublisher``): ``concurrency`` tasks, each sending a batch and awaiting every
    acknowledgement before its next."""
    latencies: list[float] = []

    async def send(producer: AIOKafkaProducer, batch: Sequence[OutgoingRecord]) -> None:
        acks = [
            await producer.send(r.topic, key=r.key.encode(), value=r.value, headers=list(r.headers))
            for r in batch
        ]
        await asyncio.gather(*acks)

    async def main() -> float:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=2,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            request_timeout_ms=60_000,
        )
        await producer.start()
        try:
            await send(producer, batches[0][:1])  # connect and fetch metadata untimed
            pending = list(reversed(batches))

            async def worker() -> None:
                while pending:
                    batch = pending.pop()
                    started = time.perf_counter()
                    await send(producer, batch)
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started
        finally:
            await producer.stop()

    return asyncio.run(main()), latencies


def run(
    servers: Servers,
    size: int = DEFAULT_SIZE,
    *,
    batch: int = DEFAULT_BATCH,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Result:
    """Measure ingest over HTTP and the raw-producer baselines on one fresh broker."""
    broker = servers.fresh_broker()
    database_url = servers.fresh_database()
    try:
        # Baselines: the same mix (same seed: same types, keys and sizes; other ids).
        base_batches = _chunks(ingest_records(event_mix(size)), batch)
        raw_s, raw_latencies = _raw_batched(broker.bootstrap, base_batches, concurrency)
        aio_s, aio_latencies = _raw_aiokafka(broker.bootstrap, base_batches, concurrency)
        stream_s = produce_all(broker.bootstrap, ingest_records(event_mix(size)))

        with psycopg.connect(database_url) as conn:
            token = create_token(conn, "bench")
        bodies = [orjson.dumps(list(c)) for c in _chunks(event_mix(size), batch)]
        warm = orjson.dumps(event_mix(min(batch, 50), seed=99))
        service = IngestProcess(broker.bootstrap, database_url, servers.root)
        service.start()
        latencies: list[float] = []
        try:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            local = threading.local()

            def post(body: bytes) -> None:
                client: httpx.Client | None = getattr(local, "client", None)
                if client is None:
                    client = local.client = httpx.Client(headers=headers, timeout=60)
                started = time.perf_counter()
                reply = client.post(f"{service.url}/v1/events", content=body)
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    raise RuntimeError(f"ingest answered {reply.status_code}: {reply.text[:300]}")

            post(warm)  # producer connection, token cache, pool: outside the timing
            latencies.clear()
            publish_before = service.publish_seconds()
            meter = CpuMeter(
                {
                    "ingest": service.process.pid,
                    "broker": broker_pid(broker),
                    "postgres": servers.postgres.process.pid if servers.postgres.process else None,
                },
                own_name="clients",
            )
            meter.start()
            ingest_s = _run_concurrently(bodies, concurrency, post)
            cpu = meter.stop()
            publish_after = service.publish_seconds()
        finally:
            service.stop()
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM ingest_ledger").fetchone()
        ledger_rows = int(row[0]) if row else 0
        expected = size + len(orjson.loads(warm))
        if ledger_rows != expected:
            raise RuntimeError(f"ingest_ledger holds {ledger_rows} rows, expected {expected}")
    finally:
        servers.stop_broker(broker)

    ingest_eps = size / ingest_s
    fastest_s = min(raw_s, aio_s)
    publish_s = publish_after[0] - publish_before[0]
    return Result(
        name=NAME,
        params={
            "size": size,
            "batch": batch,
            "concurrency": concurrency,
            "broker": servers.broker_kind,
            "partitions": 4,
            "server": "tenure serve ingest (subprocess, 1 uvicorn worker)",
        },
        measured={
            "events_per_s": rate(size, ingest_s),
            "seconds": round(ingest_s, 3),
            "p50_request_ms": round(percentile(latencies, 50) * 1000, 1),
            "p99_request_ms": round(percentile(latencies, 99) * 1000, 1),
            "claim_and_publish_share": round(publish_s / (ingest_s * concurrency), 3),
            "claim_and_publish_ms_per_batch": round(
                publish_s / max(1.0, publish_after[1] - publish_before[1]) * 1000, 1
            ),
            "cpu_seconds": cpu,
        },
        baseline={
            "what": "the faster of two raw producers, same records+batches+concurrency, each"
            " batch acknowledged before the next: kafka-python (EventPublisher settings) and"
            " aiokafka (same acks/linger/batch size)",
            "events_per_s": rate(size, fastest_s),
            "fastest": "kafka-python" if raw_s <= aio_s else "aiokafka",
            "kafka_python_events_per_s": rate(size, raw_s),
            "kafka_python_p50_batch_ms": round(percentile(raw_latencies, 50) * 1000, 1),
            "kafka_python_p99_batch_ms": round(percentile(raw_latencies, 99) * 1000, 1),
            "kafka_python_stream_events_per_s": rate(size, stream_s),
            "aiokafka_events_per_s": rate(size, aio_s),
            "aiokafka_p50_batch_ms": round(percentile(aio_latencies, 50) * 1000, 1),
            "aiokafka_p99_batch_ms": round(percentile(aio_latencies, 99) * 1000, 1),
        },
        ratio=ingest_eps / (size / fastest_s),
        ratio_meaning="ingest events/s / the fastest raw batched produce events/s"
        " (higher is better, <=1)",
        notes={
            "ratio_vs_kafka_python": round(ingest_eps / (size / raw_s), 4),
            "claim_and_publish": "ledger INSERT + produce + ack inside the Postgres transaction,"
            " from the service's tenure_ingest_publish_seconds; share = of request time",
        },
    )
