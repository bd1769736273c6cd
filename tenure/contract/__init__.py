"""The Tenure event contract v1: CloudEvents envelope, validation, codec, topics and routing.

The rules themselves live in ``schemas/events/v1/*.json`` (JSON Schema 2020-12) and
``schemas/asyncapi.yaml``; see ``docs/contract.md``.
"""

from tenure.contract.codec import (
    MalformedBody,
    UnsupportedContentType,
    decode_batch,
    decode_batched,
    decode_binary,
    decode_http,
    decode_kafka_record,
    decode_record,
    decode_structured,
    encode_record,
)
from tenure.contract.envelope import CloudEvent, format_time
from tenure.contract.topics import (
    ALL_TOPICS,
    CANONICAL_TOPICS,
    DEAD_LETTERS,
    DEVICE_EVENTS,
    EVENT_TYPES,
    INGEST_TIME_HEADER,
    LIFECYCLE_TRANSITIONS,
    PAYMENT_EVENTS,
    PERSON_EVENTS,
    REASON_HEADER,
    ROUTES,
    SDK_EVENTS,
    Route,
)
from tenure.contract.validation import (
    CATEGORIES,
    DEFAULT_FUTURE_TOLERANCE,
    Rejection,
    validate_event,
    warm_up,
)

__all__ = [
    "ALL_TOPICS",
    "CANONICAL_TOPICS",
    "CATEGORIES",
    "DEAD_LETTERS",
    "DEFAULT_FUTURE_TOLERANCE",
    "DEVICE_EVENTS",
    "EVENT_TYPES",
    "INGEST_TIME_HEADER",
    "LIFECYCLE_TRANSITIONS",
    "PAYMENT_EVENTS",
    "PERSON_EVENTS",
    "REASON_HEADER",
    "ROUTES",
    "SDK_EVENTS",
    "CloudEvent",
    "MalformedBody",
    "Rejection",
    "Route",
    "UnsupportedContentType",
    "decode_batch",
    "decode_batched",
    "decode_binary",
    "decode_http",
    "decode_kafka_record",
    "decode_record",
    "decode_structured",
    "encode_record",
    "format_time",
    "validate_event",
    "warm_up",
]
