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
