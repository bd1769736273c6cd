from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from tenure.contract import (
    DEVICE_EVENTS,
    EVENT_TYPES,
    PAYMENT_EVENTS,
    PERSON_EVENTS,
    ROUTES,
    CloudEvent,
    decode_record,
    encode_record,
    format_time,
    validate_event,
)

from .samples import NOW, TOLERANCE, event

EXPECTED_ROUTING = {
    "device.activated": (DEVICE_EVENTS, "dev-8842"),
    "device.used": (DEVICE_EVENTS, "dev-8842"),
    "device.deactivated": (DEVICE_EVENTS, "dev-8842"),
    "payment.completed": (PAYMENT_EVENTS, "p-2002"),
    "payment.refunded": (PAYMENT_EVENTS, "p-2002"),
    "subscription.cancelled": (PERSON_EVENTS, "p-2002"),
    "referral.completed": (PERSON_EVENTS, "p-1001"),
    "feedback.submitted": (PERSON_EVENTS, "p-1001"),
    "identity.linked": (PERSON_EVENTS, "p-1001"),
    "person.erasure_requested": (PERSON_EVENTS, "p-3003"),
    "person.consent_changed": (PERSON_EVENTS, "p-1001"),
}


def valid(event_type: str = "device.used", **overrides: object) -> CloudEvent:
    result = validate_event(event(event_type, **overrides), now=NOW, future_tolerance=TOLERANCE)
    assert isinstance(result, CloudEvent), result
    return result


def test_routing_table_covers_every_type() -> None:
    assert set(EXPECTED_ROUTING) == set(EVENT_TYPES) == set(ROUTES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_topic_and_key_per_type(event_type: str) -> None:
    ev = valid(event_type)
    assert (ev.topic(), ev.key()) == EXPECTED_ROUTING[event_type]


def test_unknown_type_has_no_route() -> None:
    ev = CloudEvent("s", "1", "x.y", NOW, None, {}, {})
    with pytest.raises(ValueError, match="no route"):
        ev.topic()


def test_time_is_normalised_to_utc() -> None:
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    ev = CloudEvent("s", "1", "device.used", local, None, {"device_id": "d"}, {})
    assert ev.time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert ev.time.tzinfo is UTC


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CloudEvent("s", "1", "device.used", datetime(2024, 5, 1), None, {}, {})


def test_extensions_must_not_shadow_core_attributes() -> None:
    with pytest.raises(ValueError, match="core attribute"):
        CloudEvent("s", "1", "device.used", NOW, None, {}, {"id": "2"})


def test_is_frozen() -> None:
    ev = valid()
    with pytest.raises(AttributeError):
        ev.id = "other"  # type: ignore[misc]


def test_to_json_dict() -> None:
    ev = valid("device.used", time="2024-05-01T14:00:00.250+02:00", subject="dev-8842", trace="t1")
    assert ev.to_json_dict() == {
        "specversion": "1.0",
        "id": "evt-device.used-1",
        "source": "urn:tenure:test:producer",
        "type": "device.used",
        "time": "2024-05-01T12:00:00.250000Z",
        "subject": "dev-8842",
        "datacontenttype": "application/json",
        "trace": "t1",
        "data": ev.data,
    }


def test_to_json_dict_stamps_and_overwrites_ingesttime() -> None:
    ev = valid(ingesttime="1999-01-01T00:00:00Z")
    ingest = datetime(2024, 5, 1, 14, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    assert ev.to_json_dict(ingest)["ingesttime"] == "2024-05-01T12:00:01Z"
    assert ev.to_json_dict()["ingesttime"] == "1999-01-01T00:00:00Z"


def test_to_json_dict_omits_absent_subject() -> None:
    assert "subject" not in valid().to_json_dict()


def test_identity() -> None:
    assert valid().identity == ("urn:tenure:test:producer", "evt-device.used-1")


def test_format_time() -> None:
    assert format_time(datetime(2024, 5, 1, 12, tzinfo=UTC)) == "2024-05-01T12:00:00Z"
    with pytest.raises(ValueError):
        format_time(datetime(2024, 5, 1))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_record_round_trip(event_type: str) -> None:
    ev = valid(event_type)
    value = encode_record(ev, ingest_time=NOW)
    decoded = decode_record(value)
    assert isinstance(decoded, dict)
    assert decoded["ingesttime"] == "2024-05-01T12:00:30Z"
    again = validate_event(decoded, now=NOW, future_tolerance=TOLERANCE)
    assert isinstance(again, CloudEvent)
    assert (again.identity, again.time, again.data) == (ev.identity, ev.time, ev.data)
    assert orjson.loads(value)["type"] == event_type
