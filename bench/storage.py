"""``storage``: Postgres bytes per archived event, the compact format vs the format before it.

``size`` simulated events (``tenure.simulation``: the population the issue measured), each
validated, tokenised and stamped with an ingest time as the ingest service publishes it.

Measured (the code of this tree, a fresh migrated database): the events are claimed through
``tenure.storage.ledger.claim`` in batches of 500, archived through
``tenure.storage.archive.append`` with their pending records released in the same
transaction (what the archiver does), and ``ledger.tidy`` every 20 batches (what the
archiver does every 10 s). Baseline, same run, same database, same events: the tables of
migration 0001 (the ledger and the archive both keeping the envelope as jsonb, the columns
and indexes of that format) in a schema of their own, written with the statements of that
format.

Bytes are ``pg_total_relation_size`` (heap, TOAST and indexes) of the ledger, the pending
queue, the archive and the keys recorded beside it for the replay's plan
(``archive_key_names``, ``archive_latest``: migration 0028), divided by the events.
``ratio`` = compact bytes/event / before bytes/event. Also reported: the raw JSON of the
events as published (bytes/event), the seconds each format's writes took, and how fast
each format reads back for replay (events/s through ``archive.read_chunks`` vs a jsonb
``SELECT``), all same-run ratios.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from bench.result import Result, rate
from bench.servers import Servers
from tenure.contract import CloudEvent, validate_event
from tenure.privacy.boundary import tokenised
from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.population import simulate
from tenure.storage import archive, ledger
from tenure.storage.archive import ArchiveRecord
from tenure.storage.ledger import LedgerEntry

NAME = "storage"
DEFAULT_SIZE = 100_000
BATCH = 500
TIDY_EVERY = 20
"""Batches between two ``ledger.tidy`` (the archiver tidies every 10 s: ~10,000 events at
the ~1,000 events/s this machine ingests)."""
EVENTS_PER_PERSON = 38
"""Simulated events per person (default parameters; more people are drawn if short)."""

BEFORE_SCHEMA = "storage_before"
BEFORE_DDL = f"""
CREATE SCHEMA {BEFORE_SCHEMA};
CREATE TABLE {BEFORE_SCHEMA}.ingest_ledger (
    source      text NOT NULL,
    event_id    text NOT NULL,
    event_type  text NOT NULL,
    topic       text NOT NULL,
    record_key  text NOT NULL,
    envelope    jsonb NOT NULL,
    producer    text NOT NULL,
    ingested_at timestamptz NOT NULL,
    PRIMARY KEY (source, event_id)
);
CREATE TABLE {BEFORE_SCHEMA}.event_archive (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    event_time   timestamptz NOT NULL,
    record_key   text NOT NULL,
    envelope     jsonb NOT NULL,
    ingested_at  timestamptz,
    topic        text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_archive_identity UNIQUE (source, event_id)
);
CREATE INDEX event_archive_type_time ON {BEFORE_SCHEMA}.event_archive (event_type, event_time);
"""
"""The ledger and archive of migration 0001, the format before 0014."""

SIZE_SQL = (
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = ANY(%s)"
)


def simulated_events(size: int, *, seed: int = 11) -> list[tuple[LedgerEntry, ArchiveRecord]]:
    """``size`` distinct simulated events as ingest publishes them and the archiver reads them."""
    now = datetime.now(UTC)
    people = size // EVENTS_PER_PERSON + 10
    pseudonymiser = Pseudonymiser(b"bench-storage-secret-0123456789")
    out: list[tuple[LedgerEntry, ArchiveRecord]] = []
    seen: set[tuple[str, str]] = set()
    while len(out) < size:
        out.clear()
        seen.clear()
        deliveries = simulate(SimulationParameters(people=people, seed=seed)).deliveries
        for d in deliveries:
            event = validate_event(d.envelope, now=now, future_tolerance=timedelta(days=3650))
            if not isinstance(event, CloudEvent) or event.identity in seen:
                continue
            seen.add(event.identity)
            envelope, key = tokenised(
                pseudonymiser, event.to_json_dict(ingest_time=now), event.key(), {}
            )
            entry = LedgerEntry(
                event.source, event.id, event.type, event.topic(), key, envelope, "bench", now
            )
            record = ArchiveRecord(
                event.source, event.id, event.type, event.time, key, envelope, now,
                event.topic(), len(out) % 3, len(out),
            )  # fmt: skip
            out.append((entry, record))
            if len(out) == size:
                break
        people *= 2
    return out


def _write_before(
    conn: psycopg.Connection[Any], events: list[tuple[LedgerEntry, ArchiveRecord]]
) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        part = events[i : i + BATCH]
        ledger_part = sorted((e for e, _ in part), key=lambda e: e.identity)
        conn.execute(
            f"INSERT INTO {BEFORE_SCHEMA}.ingest_ledger (source, event_id, event_type, topic,"
            " record_key, envelope, producer, ingested_at)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
            " %s::jsonb[], %s::text[], %s::timestamptz[])"
            " ON CONFLICT (source, event_id) DO NOTHING",
            (
                [e.source for e in ledger_part],
                [e.event_id for e in ledger_part],
                [e.event_type for e in ledger_part],
                [e.topic for e in ledger_part],
                [e.record_key for e in ledger_part],
                [Jsonb(e.envelope) for e in ledger_part],
                [e.producer for e in ledger_part],
                [e.ingested_at for e in ledger_part],
            ),
        )
        conn.commit()
        records = [r for _, r in part]
        conn.execute(
            f"INSERT INTO {BEFORE_SCHEMA}.event_archive (source, event_id, event_type,"
            " event_time, record_key, envelope, ingested_at, topic, kafka_partition,"
            " kafka_offset)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],"
            " %s::text[], %s::jsonb[], %s::timestamptz[], %s::text[], %s::int[], %s::bigint[])"
            " ON CONFLICT (source, event_id) DO NOTHING",
            (
                [r.source for r in records],
                [r.event_id for r in records],
                [r.event_type for r in records],
                [r.event_time for r in records],
                [r.record_key for r in records],
                [Jsonb(r.envelope) for r in records],
                [r.ingested_at for r in records],
                [r.topic for r in records],
                [r.partition for r in records],
                [r.offset for r in records],
            ),
        )
        conn.commit()
    return time.perf_counter() - started


def _write_compact(
    conn: psycopg.Connection[Any], events: list[tuple[LedgerEntry, ArchiveRecord]]
) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        part = events[i : i + BATCH]
        ledger.claim(conn, [e for e, _ in part])
        conn.commit()
        records = [r for _, r in part]
        archive.append(conn, records)
        ledger.release(conn, [(r.source, r.event_id) for r in records])
        conn.commit()
        if (i // BATCH) % TIDY_EVERY == TIDY_EVERY - 1 or i + BATCH >= len(events):
            conn.autocommit = True
            ledger.tidy(conn)
            conn.autocommit = False
    return time.perf_counter() - started


def _sizes(conn: psycopg.Connection[Any], schema: str, names: list[str]) -> dict[str, int]:
    rows = conn.execute(SIZE_SQL, (schema, names)).fetchall()
    return {str(name): int(size) for name, size in rows}


def _read_before(conn: psycopg.Connection[Any]) -> tuple[int, float]:
    started = time.perf_counter()
    n = 0
    with conn.cursor(name="bench_before_read") as cur:
        cur.itersize = 5000
        cur.execute(
            f"SELECT seq, envelope, topic, kafka_partition, record_key"
            f" FROM {BEFORE_SCHEMA}.event_archive ORDER BY seq"
        )
        for _ in cur:
            n += 1
    conn.commit()
    return n, time.perf_counter() - started


def _read_compact(conn: psycopg.Connection[Any]) -> tuple[int, float]:
    started = time.perf_counter()
    n = sum(len(chunk) for chunk in archive.read_chunks(conn))
    conn.commit()
    return n, time.perf_counter() - started


def run(servers: Servers, size: int = DEFAULT_SIZE) -> Result:
    """Write ``size`` simulated events in both formats and compare their Postgres bytes."""
    events = simulated_events(size)
    raw = sum(len(orjson.dumps(e.envelope)) for e, _ in events)
    database_url = servers.fresh_database()
    with psycopg.connect(database_url) as conn:
        conn.execute(BEFORE_DDL)
        conn.commit()
        before_s = _write_before(conn, events)
        compact_s = _write_compact(conn, events)
        conn.autocommit = True
        conn.execute("ANALYZE")
        conn.autocommit = False
        before = _sizes(conn, BEFORE_SCHEMA, ["ingest_ledger", "event_archive"])
        after = _sizes(
            conn,
            "public",
            ["ingest_ledger", "ingest_pending", "event_archive", "archive_key_names",
             "archive_latest"],
        )  # fmt: skip
        pending = ledger.pending_count(conn)
        read_before = _read_before(conn)
        read_compact = _read_compact(conn)
    n = len(events)
    read_ratio = rate(*read_compact) / max(rate(*read_before), 1e-9)
    per_before = sum(before.values()) / n
    per_after = sum(after.values()) / n
    return Result(
        name=NAME,
        params={"events": n, "batch": BATCH, "source": "tenure.simulation (default parameters)"},
        measured={
            "bytes_per_event": round(per_after, 1),
            "bytes": after,
            "pending_rows_after_tidy": pending,
            "write_s": round(compact_s, 2),
            "read_events_per_s": rate(*read_compact),
        },
        baseline={
            "format": "migration 0001 (ledger and archive both keep the jsonb envelope)",
            "bytes_per_event": round(per_before, 1),
            "bytes": before,
            "write_s": round(before_s, 2),
            "read_events_per_s": rate(*read_before),
        },
        ratio=per_after / per_before,
        ratio_meaning="compact bytes/event / before bytes/event (lower is better)",
        notes={
            "raw_json_bytes_per_event": round(raw / n, 1),
            "compact_to_raw_json": round(per_after / (raw / n), 3),
            "before_to_raw_json": round(per_before / (raw / n), 3),
            "write_time_ratio": round(compact_s / before_s, 3) if before_s else None,
            "read_rate_ratio": round(read_ratio, 3),
        },
    )
