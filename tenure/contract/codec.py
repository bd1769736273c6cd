"""Decode request bodies and Kafka record values into JSON values (not yet validated)."""

from __future__ import annotations

from datetime import datetime

import orjson

from tenure.contract.envelope import CloudEvent

JSON = "application/json"
"""A JSON array of events, or one event object."""
NDJSON = "application/x-ndjson"
"""One JSON event per line; blank lines are ignored."""
SUPPORTED_CONTENT_TYPES: tuple[str, ...] = (JSON, NDJSON)


class MalformedBody(ValueError):
    """The body (or record value) cannot be decoded; the message says where and why."""


class UnsupportedContentType(MalformedBody):
    """The content type is not one :func:`decode_batch` understands (HTTP 415)."""


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode_batch(body: bytes, content_type: str) -> list[object]:
    """Decode a batch of events from a request body.

    ``application/json``: a JSON array of events, or a single JSON object (a batch of one).
    ``application/x-ndjson``: one JSON value per line; blank lines are ignored. Parameters of
    the content type (``; charset=utf-8``) are ignored. The elements are returned as decoded,
    not validated: a non-object element is left for :func:`validate_event` to reject.

    Raises :class:`MalformedBody` if the body is not valid JSON / NDJSON (naming the line for
    NDJSON) and :class:`UnsupportedContentType` for any other content type.
    """
    media_type = _media_type(content_type)
    if media_type == JSON:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedBody(f"body is not valid JSON: {exc}") from None
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            return [value]
        raise MalformedBody("body must be a JSON array of events or a single event object")
    if media_type == NDJSON:
        events: list[object] = []
        for number, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise MalformedBody(f"line {number} is not valid JSON: {exc}") from None
        return events
    raise UnsupportedContentType(
        f"unsupported content type {content_type!r}; use one of: "
        + ", ".join(SUPPORTED_CONTENT_TYPES)
    )


def decode_record(value: bytes) -> object:
    """Decode one Kafka record value (a JSON document); raise :class:`MalformedBody` if invalid."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"record value is not valid JSON: {exc}") from None


def encode_record(event: CloudEvent, *, ingest_time: datetime | None = None) -> bytes:
    """Encode a validated event as a Kafka record value (structured-mode CloudEvents JSON)."""
    return orjson.dumps(event.to_json_dict(ingest_time))
