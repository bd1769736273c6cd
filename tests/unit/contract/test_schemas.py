from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from schemas import SCHEMA_DIR, event_schema_path
from tenure.contract import EVENT_TYPES, ROUTES, CloudEvent, validate_event

from .samples import NOW, REQUIRED, TOLERANCE

V1 = SCHEMA_DIR / "events" / "v1"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_schema_dir() -> None:
    assert SCHEMA_DIR.is_dir()
    assert (SCHEMA_DIR / "asyncapi.yaml").is_file()


def test_event_schema_path() -> None:
    assert event_schema_path("device.used") == V1 / "device.used.json"
    assert event_schema_path("envelope", "v2") == SCHEMA_DIR / "events" / "v2" / "envelope.json"


@pytest.mark.parametrize("bad", ["", "../secrets", "a/b", ".hidden"])
def test_event_schema_path_refuses_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        event_schema_path(bad)


def test_one_schema_per_type_plus_envelope_and_common() -> None:
    assert {p.stem for p in V1.glob("*.json")} == {*EVENT_TYPES, "envelope", "common"}


@pytest.mark.parametrize("path", sorted(V1.glob("*.json")), ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12_with_matching_id(path: Path) -> None:
    schema = load(path)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://tenure.dev/schemas/events/v1/{path.name}"
    Draft202012Validator.check_schema(schema)


def test_envelope_lists_exactly_the_routed_types() -> None:
    assert tuple(load(V1 / "envelope.json")["properties"]["type"]["enum"]) == EVENT_TYPES


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_type_schema_shape(event_type: str) -> None:
    schema = load(event_schema_path(event_type))
    assert schema["title"] == event_type
    assert schema["properties"]["type"] == {"const": event_type}
    data = schema["$defs"]["data"]
    assert data["additionalProperties"] is False
    assert tuple(data["required"]) == REQUIRED[event_type]
    assert ROUTES[event_type].key_field in data["required"], "the routing key must be required"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_examples_are_valid_events(event_type: str) -> None:
    schema = load(event_schema_path(event_type))
    assert schema["examples"]
    for example in schema["examples"]:
        result = validate_event(example, now=NOW, future_tolerance=TOLERANCE)
        assert isinstance(result, CloudEvent), result
        assert result.type == event_type
