"""The ingest ledger: which ``(source, id)`` the ingest service has accepted, with the event.

The ingest service claims an event's identity inside a transaction, publishes it, waits for
the broker's acknowledgement and only then commits; a concurrent duplicate blocks on the
uncommitted row and then sees it as a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


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


def claim(conn: psycopg.Connection[Any], entries: Sequence[LedgerEntry]) -> set[tuple[str, str]]:
    """Insert entries not seen before; return the identities this call claimed.

    Must run inside the caller's transaction. Rows are inserted in identity order so that
    concurrent overlapping batches lock in the same order and cannot deadlock.
    """
    if not entries:
        return set()
    ordered = sorted(entries, key=lambda e: e.identity)
    rows = conn.execute(
        "INSERT INTO ingest_ledger (source, event_id, event_type, topic, record_key, envelope,"
        " producer, ingested_at)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::jsonb[], %s::text[], %s::timestamptz[])"
        " ON CONFLICT (source, event_id) DO NOTHING RETURNING source, event_id",
        (
            [e.source for e in ordered],
            [e.event_id for e in ordered],
            [e.event_type for e in ordered],
            [e.topic for e in ordered],
            [e.record_key for e in ordered],
            [Jsonb(e.envelope) for e in ordered],
            [e.producer for e in ordered],
            [e.ingested_at for e in ordered],
        ),
    ).fetchall()
    return {(str(r[0]), str(r[1])) for r in rows}


def unarchived(conn: psycopg.Connection[Any], batch_size: int = 1000) -> Iterator[LedgerEntry]:
    """Ledger entries missing from the archive (acknowledged, then lost by a broker)."""
    with conn.cursor(name="tenure_unarchived") as cur:
        cur.itersize = batch_size
        cur.execute(
            "SELECT l.source, l.event_id, l.event_type, l.topic, l.record_key, l.envelope,"
            " l.producer, l.ingested_at FROM ingest_ledger l"
            " WHERE NOT EXISTS (SELECT 1 FROM event_archive a"
            "   WHERE a.source = l.source AND a.event_id = l.event_id)"
            " ORDER BY l.ingested_at, l.source, l.event_id"
        )
        for row in cur:
            yield LedgerEntry(*row)
