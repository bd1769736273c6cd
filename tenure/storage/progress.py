"""How far the projection has read the log: the latest event time and the watermark.

``projection_progress`` holds, per topic partition, the latest event time applied; the
projection's as-of instant is its maximum less the allowed lateness
(:func:`tenure.domain.watermark.watermark`). The derive pass, the live aggregates stage and
the dashboard read it here; the apply stage records it with :func:`record_progress`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from tenure.domain.watermark import watermark
from tenure.storage.connection import Conn

__all__ = ["Partition", "max_event_time", "projection_watermark", "record_progress"]

Partition = tuple[str, int]
"""An input partition: (topic, Kafka partition)."""


def max_event_time(conn: Conn) -> datetime | None:
    """The latest event time the projection has applied (``None`` before any event)."""
    row = conn.execute("SELECT max(max_event_time) FROM projection_progress").fetchone()
    return row[0] if row else None


def projection_watermark(conn: Conn, lateness: timedelta) -> datetime | None:
    """The live projection's as-of instant: the latest event time seen less the lateness."""
    return watermark(max_event_time(conn), lateness)


def record_progress(
    conn: Conn,
    progress: Mapping[Partition, datetime],
    offsets: Mapping[Partition, int] | None = None,
) -> None:
    """Record the latest event time per input partition and, for Kafka batches, the next
    offset below which every record of the partition is applied or dead-lettered (the
    convergence checkpoint's verification reads it)."""
    offsets = offsets or {}
    if progress:
        keys = sorted(progress)
        conn.execute(
            "INSERT INTO projection_progress (topic, kafka_partition, max_event_time,"
            " applied_offset) SELECT * FROM unnest(%b::text[], %b::int[], %b::timestamptz[],"
            " %b::bigint[]) ON CONFLICT (topic, kafka_partition) DO UPDATE SET max_event_time ="
            " GREATEST(projection_progress.max_event_time, EXCLUDED.max_event_time),"
            " applied_offset = GREATEST(projection_progress.applied_offset,"
            " EXCLUDED.applied_offset)",
            ([t for t, _ in keys], [p for _, p in keys], [progress[k] for k in keys],
             [offsets.get(k) for k in keys]),
        )  # fmt: skip
    rest = sorted(set(offsets) - set(progress))
    if rest:  # partitions whose records were all dead letters
        conn.execute(
            "UPDATE projection_progress p SET applied_offset = GREATEST(p.applied_offset, o.n)"
            " FROM unnest(%b::text[], %b::int[], %b::bigint[]) AS o(topic, part, n)"
            " WHERE p.topic = o.topic AND p.kafka_partition = o.part",
            ([t for t, _ in rest], [p for _, p in rest], [offsets[k] for k in rest]),
        )
