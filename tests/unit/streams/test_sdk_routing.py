from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from streams.sdk_validator.routing import route_sdk_record
from tenure.contract.topics import EVENT_TYPES, ROUTES
from tenure.eventlog.deadletter import DeadLetter
from tenure.eventlog.publisher import OutgoingRecord
from tests.factories import make_event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def route(value: bytes) -> OutgoingRecord | DeadLetter:
    return route_sdk_record(
        b"k", value, origin="sdk/0/1", now=NOW, future_tolerance=timedelta(seconds=300)
    )


def test_valid_events_go_to_their_topic_with_their_key_and_ingest_time() -> None:
    for event_type in EVENT_TYPES:
        event = make_event(event_type, at=NOW - timedelta(days=3))
        routed = route(orjson.dumps(event))
        assert isinstance(routed, OutgoingRecord), event_type
        assert routed.topic == ROUTES[event_type].topic
        assert routed.key == event["data"][ROUTES[event_type].key_field]
        assert orjson.loads(routed.value)["ingesttime"] == "2026-11-23T12:00:00Z"
        assert dict(routed.headers)["tenure-ingest-time"] == b"2026-11-23T12:00:00Z"


def test_invalid_events_become_dead_letters_with_reason_and_field() -> None:
    future = make_event("device.used", at=NOW + timedelta(hours=1))
    missing = make_event("device.used", data={})
    for value, category, field in [
        (b"not json", "malformed", ""),
        (orjson.dumps(future), "future_time", "time"),
        (orjson.dumps(missing), "schema", "data.device_id"),
    ]:
        routed = route(value)
        assert isinstance(routed, DeadLetter)
        assert (routed.category, routed.field) == (category, field)
        assert routed.value == value and routed.key == b"k" and routed.reason


def test_binary_mode_records_are_forwarded_like_structured_ones() -> None:
    event = make_event("device.used", at=NOW - timedelta(days=1))
    headers = [(f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data"]
    headers.append(("content-type", b"application/json"))
    binary = route_sdk_record(
        b"k",
        orjson.dumps(event["data"]),
        origin="sdk/0/1",
        now=NOW,
        future_tolerance=timedelta(seconds=300),
        headers=headers,
    )
    structured = route(orjson.dumps(event))
    assert isinstance(binary, OutgoingRecord) and binary == structured


def test_forwarded_records_carry_the_content_type_ingest_sets() -> None:
    routed = route(orjson.dumps(make_event("device.used", at=NOW)))
    assert isinstance(routed, OutgoingRecord)
    assert dict(routed.headers)["content-type"] == b"application/cloudevents+json; charset=utf-8"


def test_a_rejected_binary_record_is_parked_as_its_structured_form() -> None:
    event = make_event("device.used", at=NOW, data={})
    headers = [(f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data"]
    routed = route_sdk_record(
        b"k",
        b"{}",
        origin="sdk/0/1",
        now=NOW,
        future_tolerance=timedelta(seconds=300),
        headers=headers,
    )
    assert isinstance(routed, DeadLetter) and routed.field == "data.device_id"
    assert orjson.loads(routed.value)["id"] == event["id"]
