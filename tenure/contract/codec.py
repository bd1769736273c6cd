"""Decode request bodies and Kafka record values into JSON values (not yet validated).

The CloudEvents content modes (HTTP and Kafka protocol bindings, CloudEvents 1.0) each have
a function here: :func:`decode_structured` (one event, ``application/cloudevents+json``),
:func:`decode_batched` (``application/cloudevents-batch+json``), :func:`decode_binary`
(attributes in ``ce-`` HTTP headers / ``ce_`` Kafka headers, the body is ``data``), plus
Tenure's own ``application/json`` (an array of structured events) and NDJSON.
:func:`decode_http` and :func:`decode_kafka_record` pick the mode of a request or record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import unquote

import orjson

from tenure.contract.envelope import DATA_CONTENT_TYPE, CloudEvent
from tenure.errors import TenureError

JSON = "application/json"
"""A JSON array of events, or one event object."""
NDJSON = "application/x-ndjson"
"""One JSON event per line; blank lines are ignored."""
CLOUDEVENTS_JSON = "application/cloudevents+json"
"""CloudEvents structured mode: the body is one event."""
CLOUDEVENTS_BATCH_JSON = "application/cloudevents-batch+json"
"""CloudEvents batched mode: the body is a JSON array of events."""
SUPPORTED_CONTENT_TYPES: tuple[str, ...] = (JSON, NDJSON, CLOUDEVENTS_JSON, CLOUDEVENTS_BATCH_JSON)
"""Content types of a request that is not in binary mode (binary mode takes any)."""
HTTP_ATTRIBUTE_PREFIX = "ce-"
"""Prefix of the HTTP headers carrying event attributes in binary mode."""
KAFKA_ATTRIBUTE_PREFIX = "ce_"
"""Prefix of the Kafka headers carrying event attributes in binary mode."""


class MalformedBody(TenureError, ValueError):
    """The body (or record value) cannot be decoded; the message says where and why."""


class UnsupportedContentType(MalformedBody):
    """The content type is not one :func:`decode_batch` understands (HTTP 415)."""


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_media_type(media_type: str) -> bool:
    return media_type == JSON or media_type.endswith("+json")


def _loads(body: bytes, what: str) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"{what} is not valid JSON: {exc}") from None


def decode_structured(body: bytes) -> list[object]:
    """CloudEvents structured mode: the body is one event object; return a batch of one."""
    value = _loads(body, "body")
    if not isinstance(value, dict):
        raise MalformedBody(
            f"a {CLOUDEVENTS_JSON} body must be one event object "
            f"(send an array as {CLOUDEVENTS_BATCH_JSON})"
        )
    return [value]


def decode_batched(body: bytes) -> list[object]:
    """CloudEvents batched mode: the body is a JSON array of events (elements not checked)."""
    value = _loads(body, "body")
    if not isinstance(value, list):
        raise MalformedBody(f"a {CLOUDEVENTS_BATCH_JSON} body must be a JSON array of events")
    return value


def decode_binary(
    attributes: Iterable[tuple[str, str]], content_type: str | None, body: bytes, *, prefix: str
) -> dict[str, object]:
    """CloudEvents binary mode: one event from its attribute headers and its ``data`` body.

    ``attributes``: the message's headers as ``(name, value)``; those whose lowercased name
    starts with ``prefix`` (``ce-`` on HTTP, ``ce_`` on Kafka) are the event's attributes,
    every value a string (HTTP values are percent-decoded by the caller, see
    :func:`decode_http`). ``content_type`` is the data's content type (``datacontenttype``):
    a JSON media type (``application/json``, ``*+json``) is decoded, with its parameters
    dropped (``application/json; charset=utf-8`` is ``application/json``); any other body is
    kept as text, for the validator to reject with the reason. An empty body means no data.
    """
    event: dict[str, object] = {}
    for name, value in attributes:
        lowered = name.lower()
        if lowered.startswith(prefix) and len(lowered) > len(prefix):
            event[lowered[len(prefix) :]] = value
    if content_type is not None:
        media_type = _media_type(content_type)
        event["datacontenttype"] = DATA_CONTENT_TYPE if media_type == JSON else content_type
    if body:
        if content_type is None or _is_json_media_type(_media_type(content_type)):
            event["data"] = _loads(body, "the data of a binary-mode event")
        else:
            event["data"] = body.decode("utf-8", errors="replace")
    return event


def _header_text(value: str) -> str:
    """An HTTP attribute header's value: percent-decoded (UTF-8), as the binding says.

    Servers hand header bytes over as Latin-1 text; raw UTF-8 bytes (a sender that did not
    percent-encode) are read back as UTF-8.
    """
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return unquote(value)


def is_binary_http(headers: Mapping[str, str]) -> bool:
    """Whether an HTTP request is a binary-mode CloudEvent (it has a ``ce-specversion`` header)."""
    return f"{HTTP_ATTRIBUTE_PREFIX}specversion" in headers


def decode_http(body: bytes, headers: Mapping[str, str]) -> list[object]:
    """Decode the events of an HTTP request, in whichever mode it is sent.

    Binary mode when there is a ``ce-specversion`` header (a batch of one, whatever the
    ``Content-Type``), otherwise by ``Content-Type`` (:func:`decode_batch`). ``headers``
    must look names up case-insensitively (Starlette's ``Headers`` does).
    """
    if is_binary_http(headers):
        attributes = [
            (name, _header_text(value))
            for name, value in headers.items()
            if name.lower().startswith(HTTP_ATTRIBUTE_PREFIX)
        ]
        return [decode_binary(attributes, headers.get("content-type"), body, prefix="ce-")]
    return decode_batch(body, headers.get("content-type", ""))


def decode_batch(body: bytes, content_type: str) -> list[object]:
    """Decode a batch of events from a request body by its content type.

    ``application/json``: a JSON array of events, or a single JSON object (a batch of one).
    ``application/x-ndjson``: one JSON value per line; blank lines are ignored.
    ``application/cloudevents+json``: one event (:func:`decode_structured`).
    ``application/cloudevents-batch+json``: an array of events (:func:`decode_batched`).
    Parameters of the content type (``; charset=utf-8``) are ignored. The elements are
    returned as decoded, not validated: a non-object element is left for
    :func:`validate_event` to reject.

    Raises :class:`MalformedBody` if the body is not valid JSON / NDJSON (naming the line for
    NDJSON) and :class:`UnsupportedContentType` for any other content type.
    """
    media_type = _media_type(content_type)
    if media_type == JSON:
        value = _loads(body, "body")
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
            events.append(_loads(line, f"line {number}"))
        return events
    if media_type == CLOUDEVENTS_JSON:
        return decode_structured(body)
    if media_type == CLOUDEVENTS_BATCH_JSON:
        return decode_batched(body)
    raise UnsupportedContentType(
        f"unsupported content type {content_type!r}; use one of: "
        + ", ".join(SUPPORTED_CONTENT_TYPES)
        + " (or CloudEvents binary mode: ce-* headers)"
    )


def decode_record(value: bytes) -> object:
    """Decode one Kafka record value (a JSON document); raise :class:`MalformedBody` if invalid."""
    return _loads(value, "record value")


def decode_kafka_record(value: bytes, headers: Iterable[tuple[str, bytes]]) -> object:
    """Decode one Kafka record in either CloudEvents mode (Kafka protocol binding).

    Binary mode when a ``ce_specversion`` header is present: the ``ce_*`` headers (UTF-8)
    are the attributes, the ``content-type`` header the data's content type, the value the
    data. Otherwise structured mode: the value is one event (JSON), whatever the
    ``content-type`` header says. Raises :class:`MalformedBody` if the JSON is invalid.
    """
    texts = [(name.lower(), (raw or b"").decode("utf-8", "replace")) for name, raw in headers]
    if not any(name == f"{KAFKA_ATTRIBUTE_PREFIX}specversion" for name, _ in texts):
        return decode_record(value)
    content_type = next((v for name, v in texts if name == "content-type"), None)
    return decode_binary(texts, content_type, value, prefix=KAFKA_ATTRIBUTE_PREFIX)


def encode_record(event: CloudEvent, *, ingest_time: datetime | None = None) -> bytes:
    """Encode a validated event as a Kafka record value (structured-mode CloudEvents JSON)."""
    return orjson.dumps(event.to_json_dict(ingest_time))
