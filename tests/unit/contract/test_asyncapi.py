from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from schemas import SCHEMA_DIR, event_schema_path
from tenure.contract import (
    ALL_TOPICS,
    CANONICAL_TOPICS,
    DEAD_LETTERS,
    EVENT_TYPES,
    INGEST_TIME_HEADER,
    LIFECYCLE_TRANSITIONS,
    REASON_HEADER,
    ROUTES,
    SDK_EVENTS,
)

KEY_PREFIX = "$message.payload#/data/"


@pytest.fixture(scope="module")
def doc() -> Any:
    return yaml.safe_load((SCHEMA_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))


def resolve_local(doc: Any, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(doc: Any, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node and str(node["$ref"]).startswith("#/"):
        node = resolve_local(doc, node["$ref"])
    return node


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in all_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in all_refs(v)]
    return []


def channel_by_address(doc: Any) -> dict[str, Any]:
    return {ch["address"]: ch for ch in doc["channels"].values()}


def test_is_asyncapi_3(doc: Any) -> None:
    assert doc["asyncapi"].startswith("3.")


def test_every_topic_has_exactly_one_channel(doc: Any) -> None:
    addresses = [ch["address"] for ch in doc["channels"].values()]
    assert sorted(addresses) == sorted(ALL_TOPICS)


def test_canonical_channels_carry_the_routed_types_with_their_keys(doc: Any) -> None:
    channels = channel_by_address(doc)
    seen: dict[str, tuple[str, str]] = {}
    for topic in CANONICAL_TOPICS:
        for message_ref in channels[topic]["messages"].values():
            message = deref(doc, message_ref)
            key = message["x-tenure-key"]
            assert key.startswith(KEY_PREFIX)
            assert message["name"] not in seen
            seen[message["name"]] = (topic, key.removeprefix(KEY_PREFIX))
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
    assert seen == {t: (r.topic, r.key_field) for t, r in ROUTES.items()}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_message_payload_is_the_type_schema(doc: Any, event_type: str) -> None:
    messages = [m for m in doc["components"]["messages"].values() if m["name"] == event_type]
    assert len(messages) == 1
    ref = messages[0]["payload"]["schema"]["$ref"]
    assert (SCHEMA_DIR / ref).resolve() == event_schema_path(event_type).resolve()


def test_headers(doc: Any) -> None:
    channels = channel_by_address(doc)
    for topic in CANONICAL_TOPICS:
        for message_ref in channels[topic]["messages"].values():
            headers = deref(doc, deref(doc, message_ref)["headers"])
            assert INGEST_TIME_HEADER in headers["properties"]
            assert {"content-type", INGEST_TIME_HEADER} <= set(headers["required"])
    for message_ref in channels[DEAD_LETTERS]["messages"].values():
        headers = deref(doc, deref(doc, message_ref)["headers"])
        assert REASON_HEADER in headers["required"]


def test_sdk_and_lifecycle_channels(doc: Any) -> None:
    channels = channel_by_address(doc)
    sdk = [deref(doc, m) for m in channels[SDK_EVENTS]["messages"].values()]
    assert sdk[0]["payload"]["schema"]["$ref"] == "./events/v1/envelope.json"
    transition = [deref(doc, m) for m in channels[LIFECYCLE_TRANSITIONS]["messages"].values()]
    payload = deref(doc, transition[0]["payload"])
    assert {"person_id", "kind", "old", "new", "as_of"} <= set(
        payload["properties"]["data"]["properties"]
    )


def test_published_transitions_match_the_documented_payload(doc: Any) -> None:
    from datetime import UTC, datetime

    from jsonschema import Draft202012Validator

    from tenure.projection.outbox import transition_event

    channels = channel_by_address(doc)
    transition = [deref(doc, m) for m in channels[LIFECYCLE_TRANSITIONS]["messages"].values()]
    schema = deref(doc, transition[0]["payload"])
    at = datetime(2026, 5, 1, tzinfo=UTC)
    event = transition_event("t-1", "p-1", "stage", "active", "at_risk", at, at)
    Draft202012Validator(schema).validate(event)
    bad = {**event, "data": {**event["data"], "kind": "mood"}}
    assert not Draft202012Validator(schema).is_valid(bad)


def test_every_ref_resolves(doc: Any) -> None:
    refs = all_refs(doc)
    assert refs
    for ref in refs:
        if ref.startswith("#/"):
            assert resolve_local(doc, ref) is not None
        else:
            path: Path = (SCHEMA_DIR / ref).resolve()
            assert path.is_file(), ref
            assert SCHEMA_DIR in path.parents


def test_operations_point_at_channels(doc: Any) -> None:
    for operation in doc["operations"].values():
        assert deref(doc, operation["channel"]) in doc["channels"].values()


def test_the_persons_channel_is_compacted_and_documents_the_published_value(doc: Any) -> None:
    from datetime import UTC, datetime

    from jsonschema import Draft202012Validator

    from tenure.contract.topics import COMPACTED_TOPICS, PERSONS
    from tenure.projection.person_topic import person_value
    from tenure.storage.read_models import PERSON_COLUMNS

    channel = channel_by_address(doc)[PERSONS]
    config = channel["bindings"]["kafka"]["topicConfiguration"]
    assert config["cleanup.policy"] == ["compact"] and PERSONS in COMPACTED_TOPICS
    message = [deref(doc, m) for m in channel["messages"].values()]
    assert len(message) == 1 and message[0]["x-tenure-key"] == "$message.payload#/person_id"
    schema = deref(doc, message[0]["payload"])
    assert set(schema["properties"]) == set(PERSON_COLUMNS)  # every published column
    at = datetime(2026, 5, 1, tzinfo=UTC)
    row: dict[str, Any] = dict.fromkeys(PERSON_COLUMNS)
    row |= {
        "person_id": "p-1",
        "as_of": at,
        "aliases": ["p-1-web"],
        "segment": "user_only",
        "stage": "active",
        "level": "casual",
        "tier": "none",
        "is_customer": False,
        "is_user": True,
        "is_sponsor": False,
        "is_super_user": False,
        "value_score": 0.0,
        "tags": [],
        "churn_inputs": {"silence_days": 1, "bucket": "b"},
        "tenure_days": 3,
        "active_days": 2,
        "paid_order_count": 0,
        "net_spend_minor": {},
        "referral_count": 0,
        "feedback_count": 0,
        "devices_used": 1,
        "products": ["w"],
        "engaged_weeks": [1],
        "consent": {"email": True, "sms": False},
    }
    value = orjson.loads(person_value(row, lambda p: f"~p:{p}"))
    Draft202012Validator(schema).validate(value)
    assert value["person_id"] == "~p:p-1" and value["aliases"] == ["~p:p-1-web"]
    assert not Draft202012Validator(schema).is_valid({**value, "tenure_days": "3"})


def test_the_audiences_channel_documents_the_published_change(doc: Any) -> None:
    from datetime import UTC, datetime

    from jsonschema import Draft202012Validator

    from tenure.contract.topics import AUDIENCES
    from tenure.projection.audiences import KINDS, change_event, change_id
    from tenure.storage.audience_members import Change

    channel = channel_by_address(doc)[AUDIENCES]
    [message] = [deref(doc, m) for m in channel["messages"].values()]
    assert message["x-tenure-key"] == "$message.payload#/data/person_id"
    ref = message["payload"]["schema"]["$ref"]
    schema = orjson.loads((SCHEMA_DIR / ref).read_bytes())
    at = datetime(2026, 5, 1, tzinfo=UTC)
    for kind in KINDS:
        for reason in (None, "no_consent", "quiet_period"):
            change = Change(change_id("a", 1, "p", kind, at, reason), "a", 1, "p", kind, reason, at)
            Draft202012Validator(schema).validate(change_event(change, "~p:abc"))
    event = change_event(Change(change_id("a", 1, "p", "entered", at, None), "a", 1, "p",
                                "entered", None, at), "~p:abc")  # fmt: skip
    assert not Draft202012Validator(schema).is_valid({**event, "subject": "alice"})
    assert not Draft202012Validator(schema).is_valid(
        {**event, "data": {**event["data"], "change": "moved"}}
    )
