"""The projection's convergence checkpoint: up to which ``event_archive.seq`` the raw
states are known to hold every archived event.

``seq`` values are assigned when a row is inserted, not when it commits, so a reader could
see seq 101 committed while 100 is still in flight. Archive writers hold
:data:`ARCHIVE_WRITE_LOCK` shared for their transaction (:func:`lock_archive_writes`);
:func:`stable_archive_high` takes it exclusively for an instant, so every seq up to the
value it returns is committed (or never will be): the checkpoint never skips a row.
"""

from __future__ import annotations

from typing import Any

import psycopg

ARCHIVE_WRITE_LOCK = 0x7E5A2F
"""Advisory lock: archive writers hold it shared, the convergence pass exclusively."""
RAW_STATES = "raw_states"
"""The checkpoint of the raw states (the only one so far)."""


def lock_archive_writes(conn: psycopg.Connection[Any]) -> None:
    """Hold the archive write lock shared until the caller's transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (ARCHIVE_WRITE_LOCK,))


def stable_archive_high(conn: psycopg.Connection[Any]) -> int:
    """The highest archive seq such that every lower seq is committed or abandoned.

    Runs in its own short transaction (the connection must not be in one).
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ARCHIVE_WRITE_LOCK,))
        # Writers that held the lock have ended and none can start until this transaction
        # ends; this statement's snapshot (taken now) sees all of them.
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM event_archive").fetchone()
    return int(row[0]) if row else 0


def checkpoint(conn: psycopg.Connection[Any], projection: str = RAW_STATES) -> int:
    """The archive seq up to which ``projection`` holds every archived event."""
    row = conn.execute(
        "SELECT archive_seq FROM projection_convergence WHERE projection = %s", (projection,)
    ).fetchone()
    return int(row[0]) if row else 0


def advance(conn: psycopg.Connection[Any], seq: int, projection: str = RAW_STATES) -> int:
    """Move the checkpoint forward to ``seq`` (never back); return the checkpoint."""
    row = conn.execute(
        "INSERT INTO projection_convergence (projection, archive_seq) VALUES (%s, %s)"
        " ON CONFLICT (projection) DO UPDATE SET archive_seq ="
        " GREATEST(projection_convergence.archive_seq, EXCLUDED.archive_seq),"
        " advanced_at = now() RETURNING archive_seq",
        (projection, seq),
    ).fetchone()
    return int(row[0]) if row else seq


def first_unapplied(conn: psycopg.Connection[Any], after: int, upto: int, window: int) -> int:
    """The checkpoint the projector's applied offsets justify: scanning at most ``window``
    archive rows after ``after`` (and up to ``upto``), the seq before the first row whose
    Kafka offset the projector has not applied (or the last row scanned)."""
    row = conn.execute(
        "WITH scan AS (SELECT a.seq, a.topic, a.kafka_partition, a.kafka_offset"
        "  FROM event_archive a WHERE a.seq > %s AND a.seq <= %s ORDER BY a.seq LIMIT %s)"
        " SELECT (SELECT min(s.seq) FROM scan s LEFT JOIN projection_progress p"
        "   ON p.topic = s.topic AND p.kafka_partition = s.kafka_partition"
        "   WHERE p.applied_offset IS NULL OR s.kafka_offset >= p.applied_offset),"
        " (SELECT max(seq) FROM scan)",
        (after, upto, window),
    ).fetchone()
    if row is None or row[1] is None:
        return after
    return int(row[0]) - 1 if row[0] is not None else int(row[1])


def forget_applied_offsets(conn: psycopg.Connection[Any]) -> None:
    """Forget the projector's applied offsets (a restarted broker numbers from 0 again)."""
    conn.execute("UPDATE projection_progress SET applied_offset = NULL")
