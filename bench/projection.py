"""``projection``: events/s from the topics to durable projector state vs a raw consume.

``size`` events are produced to the canonical topics of a fresh broker exactly as the
ingest service publishes them. The default ``device`` mix is device-heavy, like real
telemetry and the throughput spike: 80% ``device.used``, 8% ``device.activated``, 12%
``payment.completed``, ~10 events per device and ~20 per payer over 120 days (so a batch
touches mostly distinct keys: the worst case for per-key-per-batch writes). ``--mix full``
uses the benchmarks' ten-type mix (links and erasures included).

- Baseline: a plain aiokafka consumer (fresh group, the projector's fetch settings) reads
  every record with ``getmany`` and decodes nothing.
- Measured: the real projector worker process (``tenure worker projector``, fresh database),
  from the moment its first batch is durable until every record is applied and committed
  (read from its ``/metrics``); the first batch is not timed, like the group join.
- Derive: after the apply stage is done, persons/s the same worker derives until its
  queues are empty.
- Memory: the worker's peak resident set (``VmHWM``) once the queues are empty.

The run fails unless the raw states in Postgres equal the pure fold of the events, the
committed offsets are at the end of every partition, and the derived ``persons`` rows equal
the views of the pure fold. ``ratio`` = projector events/s / raw consume events/s.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench.events import Event, event_mix
from bench.records import ingest_records, produce_all
from bench.result import Result, rate
from bench.servers import CpuMeter, Servers, broker_pid, peak_rss_mib
from streams.projector.app import BATCH_MAX, GROUP_ID
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.domain.events import parse_event
from tenure.domain.neighbourhood import raw_fold
from tenure.eventlog.batch_loop import ConsumeSettings
from tenure.storage import derive_queue, progress
from tenure.storage.raw_states import DEVICES, PERSONS, read_all

NAME = "projection"
DEFAULT_SIZE = 100_000
TIMEOUT_S = 300.0
LATENESS_S = 3600
MIXES = ("device", "full")


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def device_mix(n: int, seed: int = 7) -> list[Event]:
    """``n`` valid events: 80% device.used, 8% device.activated, 12% payment.completed."""
    rng = random.Random(seed)
    devices, persons = max(1, n // 10), max(1, n // 20)
    end = datetime.now(UTC) - timedelta(days=1)
    out: list[Event] = []
    for i in range(n):
        at = end - timedelta(milliseconds=rng.randrange(120 * 86_400_000))
        device, person = f"dev-{rng.randrange(devices)}", f"p-{rng.randrange(persons)}"
        roll = rng.random()
        data: dict[str, Any]
        if roll < 0.80:
            kind = "device.used"
            data = {"device_id": device, "duration_s": rng.randrange(1, 3600)}
            if rng.random() < 0.5:
                data["feature"] = rng.choice(("steps", "sleep", "heart-rate", "gps"))
        elif roll < 0.88:
            kind = "device.activated"
            data = {"device_id": device, "person_id": person, "product": "watch"}
        else:
            kind = "payment.completed"
            item = {"sku": "W-1", "category": "hardware", "currency": "EUR",
                    "amount_minor": rng.randrange(499, 49_900), "device_id": device}  # fmt: skip
            data = {"order_id": f"o-{i}", "payer_id": person, "items": [item]}
        out.append({"specversion": "1.0", "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "source": "urn:tenure:bench-projection", "type": kind, "time": _rfc3339(at),
                    "data": data})  # fmt: skip
    return out


async def _raw_consume(bootstrap: str, size: int, settings: ConsumeSettings) -> tuple[int, float]:
    """aiokafka ``getmany`` of every record (fresh group); (records timed, seconds)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *CANONICAL_TOPICS,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
    )
    await consumer.start()
    try:
        seen = first = 0
        started = 0.0
        deadline = time.monotonic() + TIMEOUT_S
        while seen < size:
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw consumer read only {seen} of {size} records")
            batches = await consumer.getmany(timeout_ms=200, max_records=settings.batch_max)
            n = sum(len(ms) for ms in batches.values())
            if n and not seen:
                started, first = time.perf_counter(), n
            seen += n
        return seen - first, time.perf_counter() - started
    finally:
        await consumer.stop()


def _metrics(port: int) -> dict[str, float]:
    """The worker's samples, keyed ``name{label=value,...}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return samples


def _records_done(samples: dict[str, float]) -> int:
    return int(
        samples.get("tenure_projector_records_total{outcome=applied}", 0)
        + samples.get("tenure_projector_records_total{outcome=dead_lettered}", 0)
    )


def _persons_derived(samples: dict[str, float]) -> int:
    return int(samples.get("tenure_projector_derived_total{kind=person}", 0))


def _backlog(database_url: str) -> int:
    """Queued persons and devices, plus persons whose schedule came due at the watermark."""
    with psycopg.connect(database_url) as conn:
        persons, devices = derive_queue.backlog(conn)
        as_of = progress.projection_watermark(conn, timedelta(seconds=LATENESS_S))
        due = 0 if as_of is None else derive_queue.due_persons(conn, as_of)
    return persons + devices + due


def _start_worker(bootstrap: str, database_url: str, folder: Any) -> tuple[Any, int]:
    from tenure.runtime.process import ManagedProcess, free_port, port_open

    port = free_port()
    env = dict(os.environ)
    env.update(
        TENURE_KAFKA_BOOTSTRAP=bootstrap,
        TENURE_DATABASE_URL=database_url,
        TENURE_STATE_DIR=str(folder),
        TENURE_ALLOWED_LATENESS_S=str(LATENESS_S),
        TENURE_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "tenure.cli.app", "worker", "projector"]
    worker = ManagedProcess(
        "projector", [*command, "--metrics-port", str(port)], folder / "projector.log", env=env
    )
    worker.start()
    worker.wait_ready(lambda: port_open("127.0.0.1", port), 60)
    return worker, port


def _deltas_left(database_url: str) -> int:
    """Raw-state delta rows not compacted (each derive pass compacts the keys it claims)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM raw_device_deltas)"
            " + (SELECT count(*) FROM raw_person_deltas)"
        ).fetchone()
    return int(row[0]) if row else 0


def _check_raw_states(database_url: str, events: list[Event]) -> dict[str, int]:
    """Raw states in Postgres must equal the pure per-key fold of the events."""
    want = raw_fold(parse_event(e) for e in events)
    with psycopg.connect(database_url) as conn:
        devices = read_all(conn, DEVICES)  # compacted rows joined with any deltas left
        persons = read_all(conn, PERSONS)
    if devices != dict(want.devices):
        raise RuntimeError("raw device states differ from the pure fold")
    if persons != dict(want.person_states):
        raise RuntimeError("raw person states differ from the pure fold")
    return {"devices": len(devices), "persons": len(persons)}


def _check_persons(database_url: str, events: list[Event]) -> int:
    """Derived ``persons`` rows, read at the watermark, must equal the views of the pure
    fold there (a row keeps its view until its schedule: ``persons_as_of``)."""
    from tenure.domain.world import fold, views
    from tenure.projection.replay import aliases_by_person
    from tenure.storage.read_models import person_row, persons_as_of

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT max(max_event_time) FROM projection_progress").fetchone()
        assert row is not None and row[0] is not None
        as_of = row[0] - timedelta(seconds=LATENESS_S)
        got = persons_as_of(conn, as_of)
    world = fold(parse_event(e) for e in events)
    aliases = aliases_by_person(world)
    want = sorted(person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items())
    normalise = _plain_rows
    if normalise(got) != normalise(want):
        raise RuntimeError(f"persons rows differ from the pure fold ({len(got)} vs {len(want)})")
    return len(got)


def _plain_rows(rows: Any) -> list[tuple[Any, ...]]:
    """Rows with JSON text decoded (Postgres returns ``jsonb`` columns as objects)."""
    return [
        tuple(orjson.loads(v) if isinstance(v, str) and v[:1] == "{" else v for v in row)
        for row in rows
    ]


def _committed_total(bootstrap: str) -> int:
    """Sum of the projector group's committed offsets (fresh topics: records committed)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP_ID)
    try:
        return sum(
            consumer.committed(TopicPartition(t, p)) or 0
            for t in CANONICAL_TOPICS
            for p in sorted(consumer.partitions_for_topic(t) or ())
        )
    finally:
        consumer.close()


def _say(message: str) -> None:
    print(f"bench projection: {message}", file=sys.stderr, flush=True)


def _wait(condition: Any, what: str) -> float:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)  # each poll costs the worker a /metrics page
    return time.perf_counter()


def run(servers: Servers, size: int = DEFAULT_SIZE, mix: str = "device") -> Result:
    """Measure the projector worker and the raw-consume baseline on the same topics."""
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}")
    events = device_mix(size) if mix == "device" else event_mix(size)
    broker = servers.fresh_broker()
    database_url = servers.fresh_database()
    settings = ConsumeSettings(
        broker.bootstrap, GROUP_ID, CANONICAL_TOPICS, "projector", batch_max=BATCH_MAX
    )
    load_before = os.getloadavg()
    try:
        produce_s = produce_all(broker.bootstrap, ingest_records(events))
        raw_n, raw_s = asyncio.run(_raw_consume(broker.bootstrap, size, settings))
        _say(f"raw getmany: {raw_n / raw_s:,.0f} events/s; starting the projector")

        worker, port = _start_worker(broker.bootstrap, database_url, servers.root)
        meter = CpuMeter(
            {
                "projector": worker.pid,
                "broker": broker_pid(broker),
                "postgres": servers.postgres.process.pid if servers.postgres.process else None,
            }
        )
        try:
            first = [0]

            def started() -> bool:
                first[0] = _records_done(_metrics(port))
                return first[0] > 0

            t_first = _wait(started, "the first durable batch")
            meter.start()
            t_end = _wait(lambda: _records_done(_metrics(port)) >= size, "every record applied")
            cpu = meter.stop()
            at_end = _metrics(port)
            _say(f"applied {size - first[0]} events in {t_end - t_first:.2f} s; deriving ...")
            t_derived = _wait(lambda: _backlog(database_url) == 0, "the derive queues to drain")
            derived = _persons_derived(_metrics(port)) - _persons_derived(at_end)
            peak_rss = peak_rss_mib(worker.pid) if worker.pid else None
        finally:
            worker.stop()
        load_after = os.getloadavg()
        raw_rows = _check_raw_states(database_url, events)
        committed = _committed_total(broker.bootstrap)
        if committed != size:
            raise RuntimeError(f"{committed} records committed, expected {size}")
        person_rows = _check_persons(database_url, events)
        deltas_left = _deltas_left(database_url)
    finally:
        servers.stop_broker(broker)

    if not raw_n or size <= first[0]:
        raise ValueError(f"size {size} fits in one batch: nothing left to time")
    timed = size - first[0]
    apply_s = t_end - t_first
    eps, raw_eps = timed / apply_s, raw_n / raw_s
    derive_s = t_derived - t_end
    return Result(
        name=NAME,
        params={
            "size": size,
            "mix": mix,
            "broker": servers.broker_kind,
            "partitions": 4,
            "topics": len(CANONICAL_TOPICS),
            "batch_max": BATCH_MAX,
        },
        measured={
            "events_per_s": rate(timed, apply_s),
            "seconds": round(apply_s, 3),
            "cpu_seconds": cpu,
            "derive_persons_per_s": rate(derived, derive_s),
            "derive_seconds_after_apply": round(derive_s, 3),
            "projector_peak_rss_mib": peak_rss,
        },
        baseline={
            "what": "aiokafka getmany, projector fetch settings, fresh group, same topics",
            "events_per_s": rate(raw_n, raw_s),
            "seconds": round(raw_s, 3),
            "produce_stream_records_per_s": rate(size, produce_s),
        },
        ratio=eps / raw_eps,
        ratio_meaning="projector events/s (topic -> durable raw state, committed) /"
        " raw getmany events/s (higher is better, <= 1)",
        notes={
            "timed_events": timed,
            "first_batch_excluded": first[0],
            "persons_derived_after_apply": derived,
            "rows": {"raw": raw_rows, "persons": person_rows},
            "raw_delta_rows_left_after_derive": deltas_left,
            "checked": "raw states == pure fold; every record committed; persons == views",
            "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        },
    )
