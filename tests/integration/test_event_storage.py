"""Compact event storage (docs/design/event-storage.md): the ledger keeps identities, an
acknowledged event's record stays in ``ingest_pending`` only until the archive has it,
recovery republishes what the archive lacks, and the archive gives every event back."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import orjson
import psycopg
import pytest

from tenure.contract.topics import CANONICAL_TOPICS, EVENT_TYPES, ROUTES
from tenure.eventlog.publisher import EventPublisher
from tenure.eventlog.recovery import republish_unarchived
from tenure.runtime.broker import LocalBroker
from tenure.storage import archive, identity, ledger
from tenure.storage.archive import ArchiveRecord
from tenure.storage.ledger import LedgerEntry
from tests.factories import make_event
from tests.integration.pipeline import (
    archive_events,
    ingest_server,
    ledger_ids,
    running_archiver,
    wait_for_archive,
)
from tests.integration.projection_harness import read_topic


def _post(url: str, token: str, events: list[dict]) -> dict:
    reply = httpx.post(
        f"{url}/v1/events",
        content=orjson.dumps(events),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    body: dict = reply.json()
    return body


def _pending(conn: psycopg.Connection, source: str) -> list[str]:
    rows = conn.execute(
        "SELECT event_id FROM ingest_pending WHERE source = %s ORDER BY event_id", (source,)
    ).fetchall()
    return [r[0] for r in rows]


def _published(bootstrap: str, source: str) -> list[dict]:
    """Every record of ``source`` on the canonical topics, from their beginning."""
    values = [_decoded(r.value) for t in CANONICAL_TOPICS for r in read_topic(bootstrap, t)]
    return [v for v in values if isinstance(v, dict) and v.get("source") == source]


def _decoded(value: bytes | None) -> object:
    """A record's JSON value; ``None`` for what other tests on the shared broker put there
    that is not JSON (a poison record, a tombstone): not this test's records."""
    try:
        return orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None


def test_the_ledger_keeps_identities_and_no_payload(pool) -> None:
    with pool.connection() as conn:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'ingest_ledger' ORDER BY ordinal_position"
        ).fetchall()
    assert [c[0] for c in columns] == ["identity", "ingested_at", "source", "event_id", "producer"]


@pytest.mark.kafka
def test_an_archived_event_leaves_no_payload_in_the_ledger(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    events = [make_event(t, source=unique_source, n=i) for i, t in enumerate(EVENT_TYPES)]
    with ingest_server(pool, broker.bootstrap) as (url, token):
        assert _post(url, token, events)["accepted"] == len(events)
        with pool.connection() as conn:  # acknowledged, not archived: the record is kept
            assert _pending(conn, unique_source) == sorted(e["id"] for e in events)
        with running_archiver(pool, broker.bootstrap):
            wait_for_archive(database_url, unique_source, len(events))
            deadline = time.monotonic() + 30
            with pool.connection() as conn:
                while _pending(conn, unique_source) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert _pending(conn, unique_source) == []
    assert sorted(ledger_ids(database_url, unique_source)) == sorted(e["id"] for e in events)
    with pool.connection() as conn:
        back = {e.envelope["id"]: e for e in archive.read_source(conn, unique_source)}
    for event in events:  # the archive alone has the event now, whole
        row = back[event["id"]]
        assert row.topic == ROUTES[event["type"]].topic
        for name in ("specversion", "id", "source", "type", "time"):
            assert row.envelope[name] == event[name]


def test_a_record_archived_before_its_claim_committed_is_swept(
    database_url: str, unique_source: str
) -> None:
    # The broker acknowledges before the ingest service commits: the archiver can archive
    # the record while the ledger row is still invisible to it.
    event = make_event("device.used", source=unique_source)
    now = datetime.now(UTC)
    entry = LedgerEntry(unique_source, event["id"], event["type"], "t", "k", event, "test", now)
    with psycopg.connect(database_url) as ingest, psycopg.connect(database_url) as archiver:
        assert ledger.claim(ingest, [entry]) == {entry.identity}  # not committed yet
        with archiver.transaction():
            archive_events(archiver, [event])
            assert ledger.release(archiver, [entry.identity]) == 0  # it cannot see the row
        ingest.commit()
        assert _pending(ingest, unique_source) == [event["id"]]
        assert event["id"] not in {e.event_id for e in ledger.unarchived(ingest)}
        ingest.commit()
        archiver.autocommit = True
        assert ledger.tidy(archiver) >= 1
        assert _pending(ingest, unique_source) == []


@pytest.mark.kafka
def test_recovery_republishes_acknowledged_events_the_archive_lacks(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    archived_first = [make_event("device.used", source=unique_source, n=i) for i in range(5)]
    lost = [make_event(t, source=unique_source, n=i) for i, t in enumerate(EVENT_TYPES)]
    with ingest_server(pool, broker.bootstrap) as (url, token):
        with running_archiver(pool, broker.bootstrap):
            assert _post(url, token, archived_first)["accepted"] == 5
            wait_for_archive(database_url, unique_source, 5)
        # The archiver is down; these are acknowledged, then (say) the broker loses them.
        assert _post(url, token, lost)["accepted"] == len(lost)
    with pool.connection() as conn:
        acknowledged = {e.event_id: e for e in ledger.unarchived(conn)}
    assert {e["id"] for e in lost} <= set(acknowledged)
    assert not {e["id"] for e in archived_first} & set(acknowledged)

    publisher = EventPublisher(broker.bootstrap)
    try:
        with pool.connection() as conn:
            assert republish_unarchived(conn, publisher) >= len(lost)
    finally:
        publisher.close()
    records = _published(broker.bootstrap, unique_source)
    times = Counter(r["id"] for r in records)  # once from ingest, once more if republished
    assert times == {**{e["id"]: 1 for e in archived_first}, **{e["id"]: 2 for e in lost}}
    for record in records:  # the record as the ingest service published it, token and all
        if record["id"] in acknowledged:
            assert record == acknowledged[record["id"]].envelope

    with running_archiver(pool, broker.bootstrap):
        ids = wait_for_archive(database_url, unique_source, len(archived_first) + len(lost))
        with pool.connection() as conn:
            deadline = time.monotonic() + 30
            while _pending(conn, unique_source) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _pending(conn, unique_source) == []
    assert sorted(ids) == sorted(e["id"] for e in archived_first + lost)
    with pool.connection() as conn:
        assert [e for e in ledger.unarchived(conn) if e.source == unique_source] == []


def test_the_archive_gives_every_event_back(pool, unique_source: str) -> None:
    events = [make_event(t, source=unique_source, n=i) for i, t in enumerate(EVENT_TYPES)]
    big = make_event("payment.completed", source=unique_source)
    big["data"]["amount_minor"] = 2**64 + 3  # beyond 64 bits: still exact
    records = [
        ArchiveRecord(e["source"], e["id"], e["type"], datetime.now(UTC), "k", e, None, "t", 0, n)
        for n, e in enumerate([*events, big])
    ]
    with pool.connection() as conn:
        archive.append(conn, records)
        rows = archive.read_source(conn, unique_source)
        assert [r.envelope for r in rows] == [*events, big]
        first = rows[0].seq
        assert archive.read_seq(conn, first) == rows[0]
        assert archive.read_range(conn, first - 1, rows[-1].seq, 100)[: len(rows)][0] == rows[0]


def test_the_key_in_sql_is_the_key_in_python(pool) -> None:
    pairs = [("urn:tenure:x", "1"), ("urn:ünï", "id-✓"), ("s", ""), ("a" * 512, "b" * 256)]
    with pool.connection() as conn:
        for source, event_id in pairs:
            row = conn.execute(
                f"SELECT {identity.SQL_EXPRESSION} FROM (VALUES (%s, %s)) v(source, event_id)",
                (source, event_id),
            ).fetchone()
            assert row is not None and row[0] == identity.identity_key(source, event_id)
