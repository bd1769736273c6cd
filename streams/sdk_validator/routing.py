"""Deciding where one record written by an SDK client goes: its canonical topic or dead letters."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from tenure.contract import MalformedBody, Rejection, decode_kafka_record, validate_event
from tenure.eventlog.deadletter import DeadLetter
from tenure.eventlog.publisher import OutgoingRecord, event_record


def route_sdk_record(
    key: bytes | None,
    value: bytes | None,
    *,
    origin: str,
    now: datetime,
    future_tolerance: timedelta,
    headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None = None,
    tokenise: Callable[[dict[str, Any], str], tuple[dict[str, Any], str]] | None = None,
) -> OutgoingRecord | DeadLetter:
    """Validate one SDK record: a valid event goes to its topic, anything else to dead letters.

    The record is in either CloudEvents Kafka mode (:func:`decode_kafka_record`): structured
    (the value is the event) or binary (``ce_*`` headers, the value is ``data``). A rejected
    binary-mode event is parked as its structured form, so the dead letter keeps its
    attributes. The forwarded record is structured, like ingest's, with the same headers.
    ``tokenise`` (envelope, key) -> (envelope, key) replaces person ids by their tokens
    before the event is forwarded (:mod:`tenure.privacy.boundary`).
    """
    raw = value or b""
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    try:
        item = decode_kafka_record(raw, pairs)
    except MalformedBody as exc:
        return DeadLetter(key, raw, "malformed", str(exc), "", origin)
    if isinstance(item, dict) and any(name.lower() == "ce_specversion" for name, _ in pairs):
        raw = orjson.dumps(item)
    checked = validate_event(item, now=now, future_tolerance=future_tolerance)
    if isinstance(checked, Rejection):
        return DeadLetter(key, raw, checked.category, checked.reason, checked.field, origin)
    envelope, record_key = checked.to_json_dict(ingest_time=now), checked.key()
    if tokenise is not None:
        envelope, record_key = tokenise(envelope, record_key)
    return event_record(checked.topic(), record_key, envelope, now)
