"""The ingest ledger: which ``(source, id)`` the ingest service has accepted, and the events
acknowledged but not archived yet.

Two tables (migration 0014, ``docs/design/event-storage.md``):

- ``ingest_ledger``: one narrow row per identity ever accepted over HTTP (its key,
  ``source``, ``event_id``, ``producer``, ``ingested_at``; unique on the key of
  :mod:`tenure.storage.identity`), kept for good: it is what makes a second ``POST`` of the
  same event a duplicate.
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
from uuid import UUID

import orjson
import psycopg

from tenure.storage.identity import identity_key


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


def claim(
    conn: psycopg.Connection[Any],
    entries: Sequence[LedgerEntry],
    *,
    encoded: Sequence[bytes] | None = None,
) -> set[tuple[str, str]]:
    """Insert entries not seen before; return the identities this call claimed.

    Each claimed entry's record is kept in ``ingest_pending`` by the same statement. Must
    run inside the caller's transaction. Rows are inserted in key order so that
    concurrent overlapping batches lock in the same order and cannot deadlock.

    ``encoded``: each entry's envelope already as JSON bytes (the record value the caller
    publishes), in the order of ``entries``; encoded here when not given. The batch goes to
    Postgres as one JSON document (``docs/design/ingest-cost.md``): psycopg adapts a list
    parameter element by element in Python, ~14% of the ingest service's CPU with eight
    arrays of 500; orjson writes the document in C and embeds each envelope as it is.
    """
    if not entries:
        return set()
    if encoded is not None and len(encoded) != len(entries):
        raise ValueError("encoded holds one value per entry")
    by_key: dict[UUID, tuple[LedgerEntry, bytes | None]] = {}
    for position, entry in enumerate(entries):
        value = encoded[position] if encoded is not None else None
        by_key.setdefault(identity_key(*entry.identity), (entry, value))
    rows = [
        {
            "k": key,
            "s": entry.source,
            "i": entry.event_id,
            "t": entry.topic,
            "r": entry.record_key,
            "e": orjson.Fragment(value if value is not None else _json(entry.envelope)),
            "p": entry.producer,
            "a": entry.ingested_at,
        }
        for key, (entry, value) in sorted(by_key.items(), key=lambda item: item[0])
    ]
    claimed = conn.execute(
        "WITH batch AS (SELECT * FROM json_to_recordset(%s::json)"
        "   AS b(k uuid, s text, i text, t text, r text, e json, p text, a timestamptz)),"
        " claimed AS (INSERT INTO ingest_ledger (identity, ingested_at, source, event_id, producer)"
        "   SELECT k, a, s, i, p FROM batch"
        "   ON CONFLICT (identity) DO NOTHING RETURNING identity)"
        " INSERT INTO ingest_pending (identity, ingested_at, source, event_id, topic, record_key,"
        "   envelope)"
        " SELECT b.k, b.a, b.s, b.i, b.t, b.r, convert_to(b.e::text, 'UTF8')"
        "   FROM batch b JOIN claimed c ON c.identity = b.k"
        " RETURNING source, event_id",
        (orjson.dumps(rows).decode(),),
    ).fetchall()
    return {(str(r[0]), str(r[1])) for r in claimed}


def release(conn: psycopg.Connection[Any], identities: Sequence[tuple[str, str]]) -> int:
    """Forget the pending records of ``identities`` (the archiver, in the transaction that
    archives them); return how many were pending."""
    if not identities:
        return 0
    keys = sorted({identity_key(source, event_id) for source, event_id in identities})
    cur = conn.execute("DELETE FROM ingest_pending WHERE identity = ANY(%s::uuid[])", (keys,))
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
        " WHERE a.identity = p.identity)"
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
            " JOIN ingest_ledger l USING (identity)"
            " WHERE NOT EXISTS (SELECT 1 FROM event_archive a WHERE a.identity = p.identity)"
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
