"""The ``dead_letters`` table: every record a stage parked, listable and re-drivable.

Written by the stage that dead-letters (in the transaction of its batch where it has one),
alongside the dead-letter topic. ``tenure deadletters list|redrive`` read and mark it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """One dead letter as a row (see the migration ``0008`` for the columns' meaning)."""

    stage: str
    category: str
    reason: str
    field: str
    origin: str
    payload: bytes
    record_key: bytes | None = None
    topic: str | None = None
    kafka_partition: int | None = None
    kafka_offset: int | None = None
    archive_seq: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """A dead letter as listed."""

    id: int
    stage: str
    category: str
    reason: str
    field: str
    origin: str
    topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None
    archive_seq: int | None
    record_key: bytes | None
    payload: bytes
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    redriven_at: datetime | None
    redrive_count: int


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON Postgres can hold")


def _envelope(payload: bytes) -> Jsonb | None:
    """The payload as jsonb when it is a JSON object Postgres can likely hold (no NUL, no
    NaN); :func:`record` falls back to none if Postgres refuses it anyway."""
    if b"\\u0000" in payload or b"\x00" in payload:
        return None
    try:
        document = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return Jsonb(document) if isinstance(document, dict) else None


def _text(value: str) -> str:
    """Text Postgres can hold: no NUL, valid UTF-8."""
    return value.replace("\x00", "\\u0000").encode("utf-8", "replace").decode("utf-8")


_INSERT = (
    "INSERT INTO dead_letters (stage, category, reason, field, origin, topic,"
    " kafka_partition, kafka_offset, archive_seq, record_key, payload, envelope)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (stage, md5(origin)) DO UPDATE SET category = EXCLUDED.category,"
    " reason = EXCLUDED.reason, field = EXCLUDED.field, payload = EXCLUDED.payload,"
    " envelope = EXCLUDED.envelope, occurrences = dead_letters.occurrences + 1,"
    " last_seen_at = now(), redriven_at = NULL"
)


def record(conn: psycopg.Connection[Any], letters: Sequence[StoredDeadLetter]) -> int:
    """Insert dead letters in the caller's transaction (a letter already recorded for its
    stage and origin counts one more occurrence and is pending again); return how many.

    A dead letter is always recorded: when Postgres refuses the payload as jsonb (a lone
    surrogate, say), the row keeps it as bytes only.
    """
    for d in letters:
        params = [
            _text(d.stage), _text(d.category), _text(d.reason), _text(d.field),
            _text(d.origin), None if d.topic is None else _text(d.topic), d.kafka_partition,
            d.kafka_offset, d.archive_seq, d.record_key, d.payload, _envelope(d.payload),
        ]  # fmt: skip
        try:
            with conn.transaction():  # a savepoint: a refused envelope undoes only itself
                conn.execute(_INSERT, params)
        except psycopg.DataError:
            params[-1] = None
            conn.execute(_INSERT, params)
    return len(letters)


_COLUMNS = (
    "id, stage, category, reason, field, origin, topic, kafka_partition, kafka_offset,"
    " archive_seq, record_key, payload, occurrences, first_seen_at, last_seen_at,"
    " redriven_at, redrive_count"
)


def _row(r: Any) -> DeadLetterRow:
    return DeadLetterRow(
        int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), r[6], r[7], r[8],
        r[9], None if r[10] is None else bytes(r[10]), bytes(r[11]), int(r[12]), r[13], r[14],
        r[15], int(r[16]),
    )  # fmt: skip


def list_letters(
    conn: psycopg.Connection[Any],
    *,
    stage: str | None = None,
    pending_only: bool = False,
    ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[DeadLetterRow]:
    """Dead letters in id order, optionally of one stage, pending ones, or given ids."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE (%(stage)s::text IS NULL OR stage = %(stage)s)"
        " AND (NOT %(pending)s OR redriven_at IS NULL)"
        " AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s)) ORDER BY id LIMIT %(limit)s",
        {"stage": stage, "pending": pending_only, "ids": None if ids is None else list(ids),
         "limit": limit},
    ).fetchall()  # fmt: skip
    return [_row(r) for r in rows]


def mark_redriven(conn: psycopg.Connection[Any], ids: Sequence[int]) -> int:
    """Mark dead letters re-driven; return how many."""
    cur = conn.execute(
        "UPDATE dead_letters SET redriven_at = now(), redrive_count = redrive_count + 1"
        " WHERE id = ANY(%s)",
        (list(ids),),
    )
    return cur.rowcount


def counts(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], int]:
    """Pending dead letters per (stage, category)."""
    rows = conn.execute(
        "SELECT stage, category, count(*) FROM dead_letters WHERE redriven_at IS NULL"
        " GROUP BY stage, category"
    ).fetchall()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}
