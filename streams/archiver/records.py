"""Turning Kafka records of the canonical topics into archive rows (or dead letters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from tenure.eventlog.deadletter import DeadLetter
from tenure.storage.archive import ArchiveRecord


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def to_archive_record(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
) -> ArchiveRecord | DeadLetter:
    """Read one record; a record that is not a CloudEvent envelope becomes a dead letter."""
    origin = f"{topic}/{partition}/{offset}"

    def dead(field: str, reason: str) -> DeadLetter:
        return DeadLetter(key, value or b"", "envelope", reason, field, origin)

    try:
        envelope: Any = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return DeadLetter(key, value or b"", "malformed", f"not JSON: {exc}", "", origin)
    if not isinstance(envelope, dict):
        return dead("", "record value is not a JSON object")
    for name in ("source", "id", "type"):
        if not isinstance(envelope.get(name), str) or not envelope[name]:
            return dead(name, "required attribute is missing or not a string")
    event_time = _parse_time(envelope.get("time"))
    if event_time is None:
        return dead("time", "missing or not an RFC 3339 timestamp with an offset")
    return ArchiveRecord(
        source=envelope["source"],
        event_id=envelope["id"],
        event_type=envelope["type"],
        event_time=event_time,
        record_key=(key or b"").decode(errors="replace"),
        envelope=envelope,
        ingested_at=_parse_time(envelope.get("ingesttime")),
        topic=topic,
        partition=partition,
        offset=offset,
    )
