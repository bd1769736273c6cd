"""Running the ingest app and the archiver in-process against real servers, for tests."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
from psycopg_pool import ConnectionPool

from services.ingest.app import create_app
from services.query.app import create_app as create_query_app
from streams.archiver.records import to_archive_record
from streams.archiver.worker import Archiver
from tenure.contract.topics import ROUTES
from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.world import fold, views
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.derive import current_watermark
from tenure.projection.projector import Projector
from tenure.projection.replay import aliases_by_person
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS as LATENESS
from tenure.runtime.broker import LocalBroker
from tenure.storage import archive
from tenure.storage.archive import ArchiveRecord
from tenure.storage.read_models import (
    DEVICE_COLUMNS,
    PERSON_COLUMNS,
    device_row,
    person_row,
    persons_as_of,
)
from tenure.storage.tokens import create_token
from tests.integration.conftest import ServerThread


@contextmanager
def ingest_server(
    pool: ConnectionPool,
    bootstrap: str,
    *,
    max_body_bytes: int = 1 << 20,
    max_batch_events: int = 1000,
    publish_timeout_s: float = 10,
) -> Iterator[tuple[str, str]]:
    """Run the ingest service; yield its URL and a fresh producer token."""
    publisher = EventPublisher(bootstrap, timeout_s=publish_timeout_s)
    app = create_app(
        pool=pool,
        publisher=publisher,
        max_body_bytes=max_body_bytes,
        max_batch_events=max_batch_events,
        future_tolerance=timedelta(seconds=300),
    )
    with pool.connection() as conn:
        token = create_token(conn, "test-producer")
    try:
        with ServerThread(app) as server:
            yield server.url, token
    finally:
        publisher.close()


@contextmanager
def running_archiver(pool: ConnectionPool, bootstrap: str) -> Iterator[Archiver]:
    """Run an archiver (its own consumer group) in a thread."""
    archiver = Archiver(bootstrap, pool, group_id=f"test-archiver-{uuid.uuid4().hex[:8]}")
    stop = threading.Event()
    thread = threading.Thread(target=archiver.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield archiver
    finally:
        stop.set()
        thread.join(timeout=15)
        archiver.close()


@contextmanager
def front_door(
    pool: ConnectionPool, bootstrap: str, reader: str
) -> Iterator[tuple[str, str, Callable[[str], httpx.Response]]]:
    """Ingest, an archiver and the query API in threads: yield the ingest URL, a producer
    token and a ``GET`` of a query API path as the read-scoped client ``reader``."""
    with pool.connection() as conn:
        read_token = create_token(conn, reader, scope="read")
    with (
        ingest_server(pool, bootstrap) as (ingest, token),
        running_archiver(pool, bootstrap),
        ServerThread(create_query_app(pool=pool)) as query,
    ):

        def read(path: str) -> httpx.Response:
            return httpx.get(
                f"{query.url}{path}", headers={"Authorization": f"Bearer {read_token}"}, timeout=10
            )

        yield ingest, token, read


def event_ids_in(table: str, database_url: str, source: str) -> list[str]:
    """Event ids of ``source`` in ``event_archive`` or ``ingest_ledger`` (one per row)."""
    assert table in ("event_archive", "ingest_ledger")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(f"SELECT event_id FROM {table} WHERE source = %s", (source,)).fetchall()
    return [r[0] for r in rows]


def archived_ids(database_url: str, source: str) -> list[str]:
    """Event ids of ``source`` in the archive."""
    return event_ids_in("event_archive", database_url, source)


def ledger_ids(database_url: str, source: str) -> list[str]:
    """Event ids of ``source`` in the ingest ledger."""
    return event_ids_in("ingest_ledger", database_url, source)


def wait_for_archive(
    database_url: str, source: str, expected: int, timeout: float = 60
) -> list[str]:
    """Wait until ``expected`` rows of ``source`` are archived, then briefly for extras."""
    deadline = time.monotonic() + timeout
    ids = archived_ids(database_url, source)
    while len(ids) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        ids = archived_ids(database_url, source)
    time.sleep(0.5)
    return archived_ids(database_url, source)


def plain_row(row: tuple) -> tuple:
    """A read-model row with JSON text decoded, as Postgres returns jsonb as objects."""
    import json

    return tuple(json.loads(v) if isinstance(v, str) and v[:1] == "{" else v for v in row)


def archive_events(
    conn: psycopg.Connection[Any], events: Sequence[dict[str, Any]], *, keyed: bool = False
) -> None:
    """Append events to the durable archive as if the archiver had read them from one
    partition: all under one record key, or (``keyed``) each under its route's key, as
    ingest publishes them (its device or person)."""
    records = []
    for offset, event in enumerate(events):
        key = b"k"
        if keyed:
            key = str(event["data"].get(ROUTES[event["type"]].key_field)).encode()
        record = to_archive_record("t", 0, offset, key, orjson.dumps(event))
        assert isinstance(record, ArchiveRecord)
        records.append(record)
    archive.append(conn, records)


def read_model_rows(database_url: str, name: str, columns: tuple[str, ...]) -> list[tuple]:
    """Every row of read model ``name`` (JSON decoded), ordered by its first column; persons
    read as of the projection's watermark (a row keeps its view until its schedule)."""
    with psycopg.connect(database_url) as conn:
        if name == "persons" and columns == PERSON_COLUMNS:
            as_of = current_watermark(conn, DEFAULT_ALLOWED_LATENESS)
            return [plain_row(r) for r in persons_as_of(conn, as_of)]
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {name} ORDER BY 1").fetchall()
    return [plain_row(r) for r in rows]


def wait_for_the_fold(database_url: str, events: list[dict], timeout_s: float = 120) -> None:
    """Wait until these events' persons and devices equal the fold of the events.

    The shared topics also hold other tests' events; this test's ids are its own, so its
    persons must equal the fold of its events as of the projection's watermark (which
    other tests' later events may have moved).
    """
    world = fold(parse_event(e) for e in events)
    aliases = aliases_by_person(world)
    mine_devices = sorted(device_row(device_view_of(s)) for s in world.devices.values())
    got_persons: list[tuple] = []
    want_persons: list[tuple] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT max(max_event_time) FROM projection_progress").fetchone()
        if row and row[0] is not None:
            as_of = row[0] - LATENESS
            want_persons = [
                plain_row(r)
                for r in sorted(
                    person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items()
                )
            ]
            ids = {r[0] for r in want_persons}
            persons = read_model_rows(database_url, "persons", PERSON_COLUMNS)
            got_persons = [r for r in persons if r[0] in ids]
            if got_persons == want_persons:
                break
        time.sleep(1)
    missing = [r for r in want_persons if r not in got_persons]
    extra = [r for r in got_persons if r not in want_persons]
    assert want_persons and got_persons == want_persons, (
        f"rows the fold has and the read model lacks: {missing}; and the reverse: {extra}"
    )
    device_ids = {r[0] for r in mine_devices}
    devices = read_model_rows(database_url, "devices", DEVICE_COLUMNS)
    got_devices = [r for r in devices if r[0] in device_ids]
    assert got_devices == mine_devices


def topic_sender(broker: LocalBroker) -> tuple[EventPublisher, Any]:
    """A publisher and a ``send(batch)`` that writes events straight to their canonical topics."""
    from tenure.contract.topics import ROUTES
    from tenure.eventlog.publisher import event_record

    publisher = EventPublisher(broker.bootstrap)

    def send(batch: list[dict]) -> None:
        publisher.publish(
            [
                event_record(
                    ROUTES[e["type"]].topic,
                    e["data"][ROUTES[e["type"]].key_field],
                    e,
                    datetime.now(UTC),
                )
                for e in batch
            ]
        )

    return publisher, send


def drain(projector: Projector) -> None:
    """Settle the in-process projector until its apply and derive queues are empty."""
    for _ in range(50):
        projector.settle(budget_s=5)
        if projector.backlog() == (0, 0):
            return
    raise AssertionError(f"backlog did not drain: {projector.backlog()}")
