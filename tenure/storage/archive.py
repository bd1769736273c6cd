"""The durable event archive: every accepted event once, unique on ``(source, id)``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One event as read from a Kafka record, ready to archive."""

    source: str
    event_id: str
    event_type: str
    event_time: datetime
    record_key: str
    envelope: dict[str, Any]
    ingested_at: datetime | None
    topic: str
    partition: int
    offset: int


def append(conn: psycopg.Connection[Any], records: Sequence[ArchiveRecord]) -> Counter[str]:
    """Archive records not archived before; return how many rows were new, per topic.

    Runs in the caller's transaction; the caller commits Kafka offsets only after it commits.
    """
    if not records:
        return Counter()
    rows = conn.execute(
        "INSERT INTO event_archive (source, event_id, event_type, event_time, record_key,"
        " envelope, ingested_at, topic, kafka_partition, kafka_offset)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],"
        " %s::text[], %s::jsonb[], %s::timestamptz[], %s::text[], %s::int[], %s::bigint[])"
        " ON CONFLICT (source, event_id) DO NOTHING RETURNING topic",
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
    ).fetchall()
    return Counter(str(r[0]) for r in rows)


def count(conn: psycopg.Connection[Any]) -> int:
    """How many events the archive holds."""
    row = conn.execute("SELECT count(*) FROM event_archive").fetchone()
    return int(row[0]) if row else 0


def read_envelopes(
    conn: psycopg.Connection[Any], batch_size: int = 5000
) -> Iterator[dict[str, Any]]:
    """Every archived envelope in archive order (for replay)."""
    with conn.cursor(name="tenure_archive_read") as cur:
        cur.itersize = batch_size
        cur.execute("SELECT envelope FROM event_archive ORDER BY seq")
        for (envelope,) in cur:
            yield envelope


@dataclass(frozen=True, slots=True)
class ArchivedDocument:
    """An archive row as replay reads it: the envelope as JSON text (UTF-8), not decoded."""

    seq: int
    document: bytes
    topic: str
    partition: int
    record_key: str


def bounds(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    """``(rows, first seq, last seq)`` of the archive in the caller's snapshot (seqs 0 when
    it is empty)."""
    row = conn.execute(
        "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM event_archive"
    ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def read_documents(
    conn: psycopg.Connection[Any], first_seq: int, last_seq: int, chunk: int = 10_000
) -> Iterator[list[ArchivedDocument]]:
    """The archive rows with ``first_seq <= seq <= last_seq`` in seq order, ``chunk`` rows at
    a time, through a server-side cursor (memory stays one chunk, whatever the range)."""
    with conn.cursor(name="tenure_archive_documents") as cur:
        cur.itersize = chunk
        cur.execute(
            "SELECT seq, envelope::text, topic, kafka_partition, record_key FROM event_archive"
            " WHERE seq BETWEEN %s AND %s ORDER BY seq",
            (first_seq, last_seq),
        )
        while rows := cur.fetchmany(chunk):
            yield [
                ArchivedDocument(int(r[0]), str(r[1]).encode(), str(r[2]), int(r[3]), str(r[4]))
                for r in rows
            ]
