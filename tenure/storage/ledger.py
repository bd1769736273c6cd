"""The ingest ledger: which ``(source, id)`` the ingest service has accepted, and the events
acknowledged but not archived yet.

Two tables (migration 0014, ``docs/design/event-storage.md``):

- ``ingest_ledger``: one narrow row per identity ever accepted over HTTP (``source``,
  ``event_id``, ``producer``, ``ingested_at``), kept for good: it is what makes a second
  ``POST`` of the same event a duplicate.
- ``ingest_pending``: the record (topic, key, envelope JSON) of each accepted event until
  the archive holds it. The archiver deletes its batch's rows in the transaction that
  archives them; :func:`release_archived` sweeps the few it could not see yet. After a
  broker lost acknowledged events, :func:`unarchived` reads what to publish again.

The ingest service claims an event's identity (and writes its pending record) inside a
transaction, publishes it, waits for the broker's acknowledgement and only then commits; a
concurrent duplicate blocks on the uncommitted ledger row and then sees it as a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One accepted event as the ingest service publishes it."""

    source: str
    event_id: str
    event_type: str
    topic: str
    record_key: str
    envelope: dict[str, Any]
    producer: str
    ingested_at: datetime

    @property
    def identity(self) -> tuple[str, str]:
        """``(source, id)``: what makes two events the same event."""
        return (self.source, self.event_id)


def _json(envelope: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(envelope)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (the contract bounds them)
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def claim(conn: psycopg.Connection[Any], entries: Sequence[LedgerEntry]) -> set[tuple[str, str]]:
    """Insert entries not seen before; return the identities this call claimed.

    Each claimed entry's record is kept in ``ingest_pending`` by the same statement. Must
    run inside the caller's transaction. Rows are inserted in identity order so that
    concurrent overlapping batches lock in the same order and cannot deadlock.
    """
    if not entries:
        return set()
    ordered = sorted(entries, key=lambda e: e.identity)
    rows = conn.execute(
        "WITH batch AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
        "   %s::bytea[], %s::text[], %s::timestamptz[])"
        "   AS b(source, event_id, topic, record_key, envelope, producer, ingested_at)),"
        " claimed AS (INSERT INTO ingest_ledger (source, event_id, producer, ingested_at)"
        "   SELECT source, event_id, producer, ingested_at FROM batch"
        "   ON CONFLICT (source, event_id) DO NOTHING RETURNING source, event_id)"
        " INSERT INTO ingest_pending (source, event_id, topic, record_key, envelope, ingested_at)"
        " SELECT b.source, b.event_id, b.topic, b.record_key, b.envelope, b.ingested_at"
        " FROM batch b JOIN claimed c USING (source, event_id)"
        " RETURNING source, event_id",
        (
            [e.source for e in ordered],
            [e.event_id for e in ordered],
            [e.topic for e in ordered],
            [e.record_key for e in ordered],
            [_json(e.envelope) for e in ordered],
            [e.producer for e in ordered],
            [e.ingested_at for e in ordered],
        ),
    ).fetchall()
    return {(str(r[0]), str(r[1])) for r in rows}


def release(conn: psycopg.Connection[Any], identities: Sequence[tuple[str, str]]) -> int:
    """Forget the pending records of ``identities`` (the archiver, in the transaction that
    archives them); return how many were pending."""
    if not identities:
        return 0
    ordered = sorted(set(identities))
    cur = conn.execute(
        "DELETE FROM ingest_pending p USING unnest(%s::text[], %s::text[]) AS a(source, event_id)"
        " WHERE p.source = a.source AND p.event_id = a.event_id",
        ([s for s, _ in ordered], [i for _, i in ordered]),
    )
    return cur.rowcount


def release_archived(conn: psycopg.Connection[Any]) -> int:
    """Forget every pending record the archive already holds; return how many.

    :func:`release` cannot see a pending row whose ingest transaction had not committed
    when the archiver archived its record (the broker acknowledges before the ingest
    service commits); this sweep catches those. ``ingest_pending`` holds only what is in
    flight, so it is cheap.
    """
    cur = conn.execute(
        "DELETE FROM ingest_pending p WHERE EXISTS (SELECT 1 FROM event_archive a"
        " WHERE a.source = p.source AND a.event_id = p.event_id)"
    )
    return cur.rowcount


def tidy(conn: psycopg.Connection[Any]) -> int:
    """:func:`release_archived`, then vacuum ``ingest_pending`` so that its pages are reused
    rather than the queue growing with every event; return how many were released.

    ``conn`` must be in autocommit mode (VACUUM cannot run in a transaction).
    """
    if not conn.autocommit:
        raise ValueError("ledger.tidy needs an autocommit connection")
    released = release_archived(conn)
    conn.execute("VACUUM ingest_pending")
    return released


def pending_count(conn: psycopg.Connection[Any]) -> int:
    """How many acknowledged events are still pending (not released)."""
    row = conn.execute("SELECT count(*) FROM ingest_pending").fetchone()
    return int(row[0]) if row else 0


def unarchived(conn: psycopg.Connection[Any], batch_size: int = 1000) -> Iterator[LedgerEntry]:
    """Acknowledged events missing from the archive (acknowledged, then lost by a broker)."""
    with conn.cursor(name="tenure_unarchived") as cur:
        cur.itersize = batch_size
        cur.execute(
            "SELECT p.source, p.event_id, p.topic, p.record_key, p.envelope, l.producer,"
            " p.ingested_at FROM ingest_pending p"
            " JOIN ingest_ledger l USING (source, event_id)"
            " WHERE NOT EXISTS (SELECT 1 FROM event_archive a"
            "   WHERE a.source = p.source AND a.event_id = p.event_id)"
            " ORDER BY p.ingested_at, p.source, p.event_id"
        )
        for source, event_id, topic, key, envelope, producer, ingested_at in cur:
            decoded: dict[str, Any] = json.loads(envelope)
            yield LedgerEntry(
                source,
                event_id,
                str(decoded.get("type", "")),
                topic,
                key,
                decoded,
                producer,
                ingested_at,
            )
