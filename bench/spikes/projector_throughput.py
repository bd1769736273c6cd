"""Spike: what can a faust projector reach here, next to a raw aiokafka ``getmany``?

Run::

    python -m bench.spikes.projector_throughput --broker tansu --events 100000
    python -m bench.spikes.projector_throughput --broker apache-kafka --only baseline,faust_take2000

One run starts a broker (Tansu or Apache Kafka) and an embedded Postgres on 127.0.0.1, writes
N realistic CloudEvents (``device.used`` / ``device.activated`` keyed by ``device_id``,
``payment.completed`` keyed by ``payer_id``, ~200 B each) to one 4-partition topic, then runs
every variant over the same topic, each as a fresh consumer group reading from the start.
faust variants run in a child process (a faust worker owns its event loop and signals).
One JSON line per variant goes to stdout: events/s over the consume window (first record to
last record applied), and the ratio to the raw ``getmany`` baseline of the same run.
Progress goes to stderr. ``SPIKE_PROFILE=path`` makes each faust child write cProfile stats
of its consume window to ``path`` (the last variant run wins).
See ``docs/design/projector-throughput.md`` for results.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from tenure.domain import (
    DeviceState,
    DomainEvent,
    PaymentCompleted,
    PersonState,
    device_ids_of,
    device_singleton,
    join_devices,
    join_persons,
    parse_event,
    person_singleton,
)

TOPIC = "spike.projector.events"
PARTITIONS = 4
BATCH_DEFAULT = 2000

FAUST_BASE: dict[str, Any] = {
    "broker_session_timeout": 6.0,  # group joins take ~session_timeout/2 on Tansu
    "broker_heartbeat_interval": 1.0,
    "producer_acks": -1,
    "consumer_auto_offset_reset": "earliest",
    "web_enabled": False,
    "topic_allow_declare": True,
    "store": "memory://",
}
"""Settings of every faust variant (the ones Tenure's stream workers share)."""

FAUST_TUNED: dict[str, Any] = {
    "stream_buffer_maxsize": 16384,
    "broker_max_poll_records": 4000,
    "consumer_max_fetch_size": 16 * 1024 * 1024,
    "stream_wait_empty": False,
    "broker_commit_every": 50_000,
}
"""Settings tried on top of :data:`FAUST_BASE` to cut faust's per-event overhead."""


def log(message: str) -> None:
    """Progress on stderr (stdout holds only result lines)."""
    print(f"[spike {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- events


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate_events(n: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """``n`` (key, value) records: 80% device.used, 8% device.activated, 12% payments.

    About ten events per device and twenty per payer over 120 days, so a batch of 2,000
    touches mostly distinct keys (the worst case for per-key-per-batch writes).
    """
    rng = random.Random(seed)
    devices = max(1, n // 10)
    persons = max(1, n // 20)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    out: list[tuple[bytes, bytes]] = []
    for i in range(n):
        at = end - timedelta(seconds=rng.randrange(120 * 86_400))
        device = f"dev-{rng.randrange(devices)}"
        person = f"p-{rng.randrange(persons)}"
        roll = rng.random()
        if roll < 0.80:
            kind = "device.used"
            data: dict[str, Any] = {"device_id": device, "duration_s": rng.randrange(1, 3600)}
            if rng.random() < 0.5:
                data["feature"] = rng.choice(("steps", "sleep", "heart-rate", "gps"))
            key = device
        elif roll < 0.88:
            kind = "device.activated"
            data = {"device_id": device, "person_id": person, "product": "watch"}
            key = device
        else:
            kind = "payment.completed"
            item = {
                "sku": "W-1",
                "category": "hardware",
                "amount_minor": rng.randrange(499, 49_900),
                "currency": "EUR",
                "device_id": device,
            }
            data = {"order_id": f"o-{i}", "payer_id": person, "items": [item]}
            key = person
        envelope = {
            "specversion": "1.0",
            "id": f"{rng.getrandbits(64):016x}",
            "source": "urn:tenure:spike",
            "type": kind,
            "time": _rfc3339(at),
            "data": data,
        }
        out.append((key.encode(), orjson.dumps(envelope)))
    return out


# --------------------------------------------------------------------------- projection


def _iso(at: datetime | None) -> str | None:
    return None if at is None else _rfc3339(at)


def device_summary(state: DeviceState) -> dict[str, Any]:
    """A jsonb-friendly read model of a device (enough for the spike's write cost)."""
    latest = max(state.activations, key=lambda a: (a.at, a.event_id), default=None)
    return {
        "product": state.product,
        "user": None if latest is None else latest.person_id,
        "payer": state.payer_id,
        "activated_at": _iso(state.activated_at),
        "first_use": _iso(state.first_use_at),
        "last_use": _iso(state.last_use_at),
        "days": sorted({day.isoformat() for day, _ in state.uses}),
        "deactivations": len(state.deactivations),
    }


def person_summary(state: PersonState) -> dict[str, Any]:
    """A jsonb-friendly read model of a payer."""
    spend = sum(i.amount_minor for o in state.orders.values() for i in o.items)
    return {
        "orders": len(state.orders),
        "first_purchase": _iso(state.first_purchase_at),
        "spend_minor": spend,
    }


@dataclass
class BatchProjector:
    """Per-key-per-batch merge of the pure core, with an optional Postgres sink.

    State lives in memory for the worker's lifetime (a write-through cache of what it wrote);
    each batch groups events by key, joins the cached state with every event's singleton
    state in one n-ary join (``join_devices`` / ``join_persons``: the same semilattice as
    folding ``apply_device`` / ``apply_person``, one allocation per key instead of per
    event), and marks the keys dirty. :meth:`write` upserts the dirty keys' read models in
    one transaction, moving rows forward only (guarded by the state's version).
    """

    database_url: str | None = None
    devices: dict[str, DeviceState] = field(default_factory=dict)
    persons: dict[str, PersonState] = field(default_factory=dict)
    dirty_devices: set[str] = field(default_factory=set)
    dirty_persons: set[str] = field(default_factory=set)
    rejected: int = 0
    _conn: psycopg.Connection[Any] | None = None

    def apply(self, values: Sequence[bytes]) -> None:
        """Decode, parse and merge one batch of raw CloudEvents values."""
        by_device: dict[str, list[DomainEvent]] = {}
        by_person: dict[str, list[DomainEvent]] = {}
        for raw in values:
            try:
                event = parse_event(orjson.loads(raw))
            except (ValueError, KeyError, TypeError):
                self.rejected += 1  # a real worker dead-letters it
                continue
            for device_id in device_ids_of(event):
                by_device.setdefault(device_id, []).append(event)
            if isinstance(event, PaymentCompleted):
                by_person.setdefault(event.payer_id, []).append(event)
        for device_id, events in by_device.items():
            current = self.devices.get(device_id) or DeviceState(device_id)
            parts = [current, *(device_singleton(device_id, e) for e in events)]
            self.devices[device_id] = join_devices(device_id, parts)
        for person_id, events in by_person.items():
            person = self.persons.get(person_id) or PersonState(person_id)
            pparts = [person, *(person_singleton(person_id, e) for e in events)]
            self.persons[person_id] = join_persons(person_id, pparts)
        self.dirty_devices.update(by_device)
        self.dirty_persons.update(by_person)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            assert self.database_url is not None
            self._conn = psycopg.connect(self.database_url)
        return self._conn

    def write(self) -> None:
        """Upsert the dirty keys' read models in one transaction (forward-only), then commit."""
        if self.database_url is None or not (self.dirty_devices or self.dirty_persons):
            return
        conn = self._connection()
        d_keys = sorted(self.dirty_devices)  # key order: concurrent workers cannot deadlock
        d_states = [self.devices[k] for k in d_keys]
        d_versions = [s.version for s in d_states]
        p_keys = sorted(self.dirty_persons)
        with conn.transaction():
            if d_keys:
                conn.execute(
                    "INSERT INTO spike_devices AS t (device_id, v1, v2, v3, state)"
                    " SELECT k, a, b, c, s::jsonb FROM unnest("
                    "%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[])"
                    " AS u(k, a, b, c, s)"
                    " ON CONFLICT (device_id) DO UPDATE SET v1 = EXCLUDED.v1,"
                    " v2 = EXCLUDED.v2, v3 = EXCLUDED.v3, state = EXCLUDED.state"
                    " WHERE (t.v1, t.v2, t.v3) < (EXCLUDED.v1, EXCLUDED.v2, EXCLUDED.v3)",
                    (
                        d_keys,
                        [v[0] for v in d_versions],
                        [v[1] for v in d_versions],
                        [v[2] for v in d_versions],
                        [orjson.dumps(device_summary(s)).decode() for s in d_states],
                    ),
                )
            if p_keys:
                p_states = [self.persons[k] for k in p_keys]
                conn.execute(
                    "INSERT INTO spike_persons AS t (person_id, v1, state)"
                    " SELECT k, a, s::jsonb FROM unnest(%s::text[], %s::bigint[], %s::text[])"
                    " AS u(k, a, s)"
                    " ON CONFLICT (person_id) DO UPDATE SET v1 = EXCLUDED.v1,"
                    " state = EXCLUDED.state WHERE t.v1 < EXCLUDED.v1",
                    (
                        p_keys,
                        [len(s.orders) for s in p_states],
                        [orjson.dumps(person_summary(s)).decode() for s in p_states],
                    ),
                )
        self.dirty_devices.clear()
        self.dirty_persons.clear()

    def close(self) -> None:
        """Close the database connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


SCHEMA = (
    "CREATE TABLE spike_devices (device_id text PRIMARY KEY, v1 bigint NOT NULL,"
    " v2 bigint NOT NULL, v3 bigint NOT NULL, state jsonb NOT NULL)",
    "CREATE TABLE spike_persons (person_id text PRIMARY KEY, v1 bigint NOT NULL,"
    " state jsonb NOT NULL)",
)


def fresh_database(admin_url: str, port: int) -> str:
    """A new database with the spike's two read-model tables; its URL."""
    name = f"spike_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"  # the admin URL's server and password
    with psycopg.connect(url) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
    return url


def row_counts(database_url: str) -> dict[str, int]:
    """Rows in the spike's read models (a sanity check that the sink wrote everything)."""
    with psycopg.connect(database_url) as conn:
        devices = conn.execute("SELECT count(*) FROM spike_devices").fetchone()
        persons = conn.execute("SELECT count(*) FROM spike_persons").fetchone()
    return {
        "devices": int(devices[0]) if devices else 0,
        "persons": int(persons[0]) if persons else 0,
    }


def expected_counts(records: Sequence[tuple[bytes, bytes]]) -> dict[str, int]:
    """Distinct devices and payers the records name (what the sink must end with)."""
    devices: set[str] = set()
    persons: set[str] = set()
    for _, raw in records:
        event = parse_event(orjson.loads(raw))
        devices.update(device_ids_of(event))
        if isinstance(event, PaymentCompleted):
            persons.add(event.payer_id)
    return {"devices": len(devices), "persons": len(persons)}


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One measured configuration."""

    name: str
    kind: str  # baseline | core | aiokafka | faust
    mode: str = "count"  # count | parse | pg
    batch: int = BATCH_DEFAULT
    per_event: bool = False  # faust: ``async for value in stream`` instead of take_events
    tuned: bool = False
    note: str = ""


VARIANTS: tuple[Variant, ...] = (
    Variant("baseline", "baseline", note="aiokafka getmany, decode nothing"),
    Variant("core_parse_merge", "core", "parse", note="no Kafka: orjson+parse+merge CPU"),
    Variant("faust_stream", "faust", per_event=True, note="async for value in stream"),
    Variant("faust_take500", "faust", batch=500, note="take_events(500), count"),
    Variant("faust_take2000", "faust", note="take_events(2000), count"),
    Variant("faust_take2000_tuned", "faust", tuned=True, note="(3) + tuned settings"),
    Variant("faust_take2000_parse", "faust", "parse", note="(3) + decode/parse/merge"),
    Variant("faust_take2000_pg", "faust", "pg", note="(4) + Postgres upsert per batch"),
    Variant("faust_take2000_pg_tuned", "faust", "pg", tuned=True, note="(5) + tuned settings"),
    Variant("aiokafka_pg", "aiokafka", "pg", note="consumer group loop, same work as (5)"),
)


def _result(
    variant: Variant, events: int, seconds: float, cpu: float, **extra: Any
) -> dict[str, Any]:
    return {
        "variant": variant.name,
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds) if seconds > 0 else None,
        "cpu_s": round(cpu, 2),
        "note": variant.note,
        **extra,
    }


async def run_baseline(variant: Variant, bootstrap: str, n: int) -> dict[str, Any]:
    """Raw ``getmany`` consume rate of the topic (no decoding, no group commits)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"spike-baseline-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        seen, t0, c0 = 0, 0.0, 0.0
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for messages in batches.values():
                if messages and not seen:
                    t0, c0 = time.perf_counter(), time.process_time()
                seen += len(messages)
        return _result(variant, seen, time.perf_counter() - t0, time.process_time() - c0)
    finally:
        await consumer.stop()


def run_core(variant: Variant, records: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """CPU cost of decode + parse + per-key merge alone, batches of ``variant.batch``."""
    projector = BatchProjector()
    values = [v for _, v in records]
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(values), variant.batch):
        projector.apply(values[start : start + variant.batch])
    seconds = time.perf_counter() - t0
    return _result(
        variant,
        len(values),
        seconds,
        time.process_time() - c0,
        us_per_event=round(seconds / len(values) * 1e6, 1),
    )


async def run_aiokafka(
    variant: Variant, bootstrap: str, n: int, database_url: str
) -> dict[str, Any]:
    """A plain consumer-group loop: getmany -> apply -> Postgres commit -> offset commit."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"spike-aiokafka-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    projector = BatchProjector(database_url)
    await consumer.start()
    try:
        seen, batches_done, t0, c0 = 0, 0, 0.0, 0.0
        while seen < n:
            fetched = await consumer.getmany(timeout_ms=500, max_records=variant.batch)
            values = [m.value for ms in fetched.values() for m in ms if m.value is not None]
            if not values:
                continue
            if not seen:
                t0, c0 = time.perf_counter(), time.process_time()
            projector.apply(values)
            await asyncio.to_thread(projector.write)  # durable first ...
            offsets: dict[TopicPartition, int] = {
                tp: ms[-1].offset + 1 for tp, ms in fetched.items() if ms
            }
            await consumer.commit(offsets)  # ... then the offsets
            seen += len(values)
            batches_done += 1
        seconds = time.perf_counter() - t0
        return _result(variant, seen, seconds, time.process_time() - c0, batches=batches_done)
    finally:
        projector.close()
        await consumer.stop()


def faust_child(
    variant: Variant, bootstrap: str, n: int, database_url: str | None, result_file: Path
) -> None:
    """Run one faust variant as a worker in this process; write its result to a file."""
    import faust

    settings = {**FAUST_BASE, **(FAUST_TUNED if variant.tuned else {})}
    datadir = Path(tempfile.mkdtemp(prefix="spike-faust-"))
    app = faust.App(
        f"spike-{variant.name}-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{bootstrap}",
        datadir=str(datadir),
        **settings,
    )
    source = app.topic(TOPIC, key_serializer="raw", value_serializer="raw")
    projector = BatchProjector(database_url if variant.mode == "pg" else None)
    state = {"seen": 0, "batches": 0, "t0": 0.0, "c0": 0.0}

    profile_path = os.environ.get("SPIKE_PROFILE")
    profiler = cProfile.Profile() if profile_path else None

    def finish() -> None:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        seconds = time.perf_counter() - state["t0"]
        cpu = time.process_time() - state["c0"]
        extra = {"batches": int(state["batches"]), "settings": settings}
        result = _result(variant, int(state["seen"]), seconds, cpu, **extra)
        result_file.write_text(json.dumps(result))
        shutil.rmtree(datadir, ignore_errors=True)
        os._exit(0)  # the spike needs no graceful shutdown; the parent reads the file

    def started() -> None:
        if not state["seen"]:
            state["t0"], state["c0"] = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()

    if variant.per_event:

        @app.agent(source)
        async def count_each(stream: Any) -> None:
            async for _value in stream:
                started()
                state["seen"] += 1
                if state["seen"] >= n:
                    finish()

    else:

        @app.agent(source)
        async def take(stream: Any) -> None:
            async for events in stream.take_events(variant.batch, within=0.5):
                started()
                if variant.mode != "count":
                    projector.apply([e.message.value for e in events])
                    if variant.mode == "pg":
                        await asyncio.to_thread(projector.write)
                state["seen"] += len(events)
                state["batches"] += 1
                if state["seen"] >= n:
                    finish()

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def run_faust(
    variant: Variant, bootstrap: str, n: int, database_url: str | None, timeout: float
) -> dict[str, Any]:
    """Run a faust variant in a child process and read back its result."""
    with tempfile.TemporaryDirectory(prefix="spike-result-") as tmp:
        result_file = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "bench.spikes.projector_throughput",
            "--child",
            variant.name,
            "--bootstrap",
            bootstrap,
            "--events",
            str(n),
            "--result-file",
            str(result_file),
        ]
        if database_url:
            command += ["--database-url", database_url]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
            return {"variant": variant.name, "error": f"timed out after {timeout:.0f} s"}
        wall = time.perf_counter() - started
        if not result_file.exists():
            tail = err.decode(errors="replace")[-1500:]
            return {"variant": variant.name, "error": f"exit {child.returncode}: {tail}"}
        result: dict[str, Any] = json.loads(result_file.read_text())
        result["wall_with_startup_s"] = round(wall, 1)
        return result


# --------------------------------------------------------------------------- orchestration


@contextmanager
def servers(broker_kind: str) -> Iterator[tuple[str, str, int]]:
    """A broker and an embedded Postgres on 127.0.0.1: (bootstrap, admin URL, pg port)."""
    from tenure.runtime.apache_kafka import ApacheKafkaBroker
    from tenure.runtime.broker import LocalBroker
    from tenure.runtime.postgres import EmbeddedPostgres
    from tenure.runtime.tansu import TansuBroker

    root = Path(tempfile.mkdtemp(prefix="tenure-spike-"))
    root.chmod(0o755)  # the Postgres server user must traverse it
    postgres = EmbeddedPostgres(root / "postgres")
    broker: LocalBroker = (
        ApacheKafkaBroker(root / "kafka", partitions=PARTITIONS)
        if broker_kind == "apache-kafka"
        else TansuBroker(root / "tansu")
    )
    try:
        postgres.start()
        broker.start()
        admin = postgres.url_for("postgres")
        yield broker.bootstrap, admin, postgres.port
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


async def produce(bootstrap: str, records: Sequence[tuple[bytes, bytes]]) -> float:
    """Write the records with aiokafka (acks=all); return the seconds it took."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        t0 = time.perf_counter()
        futures = [await producer.send(TOPIC, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)
        return time.perf_counter() - t0
    finally:
        await producer.stop()


def create_topic(bootstrap: str) -> None:
    """Create the spike topic with :data:`PARTITIONS` partitions."""
    from tenure.eventlog.admin import ensure_topics

    ensure_topics(bootstrap, partitions=PARTITIONS, topics=(TOPIC,))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the spike (or one faust child)."""
    parser = argparse.ArgumentParser(prog="python -m bench.spikes.projector_throughput")
    parser.add_argument("--broker", choices=("tansu", "apache-kafka"), default="tansu")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--only", help=f"comma-separated variants: {', '.join(v.name for v in VARIANTS)}"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per faust variant")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    by_name = {v.name: v for v in VARIANTS}

    if args.child:
        faust_child(
            by_name[args.child], args.bootstrap, args.events, args.database_url, args.result_file
        )
        return 0

    chosen = [v.strip() for v in args.only.split(",")] if args.only else list(by_name)
    unknown = set(chosen) - set(by_name)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    if "baseline" not in chosen:
        chosen.insert(0, "baseline")  # every ratio needs the same run's baseline

    n = args.events
    records = generate_events(n)
    size = sum(len(v) for _, v in records) / n
    expected = expected_counts(records)
    log(f"{n} events, mean value {size:.0f} B; starting {args.broker} and Postgres")
    with servers(args.broker) as (bootstrap, admin_url, pg_port):
        create_topic(bootstrap)
        produce_s = asyncio.run(produce(bootstrap, records))
        log(f"produced in {produce_s:.1f} s ({n / produce_s:,.0f}/s)")
        baseline_rate: float | None = None
        for name in chosen:
            variant = by_name[name]
            log(f"variant {name} ...")
            database_url = fresh_database(admin_url, pg_port) if variant.mode == "pg" else None
            result: dict[str, Any]
            if variant.kind == "baseline":
                result = asyncio.run(run_baseline(variant, bootstrap, n))
            elif variant.kind == "core":
                result = run_core(variant, records)
            elif variant.kind == "aiokafka":
                assert database_url is not None
                result = asyncio.run(run_aiokafka(variant, bootstrap, n, database_url))
            else:
                result = run_faust(variant, bootstrap, n, database_url, args.timeout)
            rate = result.get("events_per_s")
            if variant.kind == "baseline" and rate:
                baseline_rate = float(rate)
            if rate and baseline_rate:
                result["ratio_to_baseline"] = round(rate / baseline_rate, 4)
            if database_url is not None and "error" not in result:
                result["rows"] = row_counts(database_url)
                result["rows_expected"] = expected
            result["broker"] = args.broker
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
