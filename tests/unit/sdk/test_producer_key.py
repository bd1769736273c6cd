from __future__ import annotations

from tenure.contract.topics import EVENT_TYPES, ROUTES
from tenure.sdk.producer import sdk_record_key
from tests.factories import make_event


def test_sdk_keys_follow_the_ingest_routing() -> None:
    for event_type in EVENT_TYPES:
        event = make_event(event_type)
        assert sdk_record_key(event) == event["data"][ROUTES[event_type].key_field].encode()


def test_unroutable_events_are_keyed_by_id() -> None:
    assert sdk_record_key({"id": "e1", "type": "nope", "data": {}}) == b"e1"
    assert sdk_record_key({"id": "e2", "type": "device.used", "data": []}) == b"e2"
