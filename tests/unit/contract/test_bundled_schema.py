"""The bundled event schema (one self-contained document, for OpenAPI) agrees with the files."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from schemas import bundled_event_schema, event_schema_path
from tenure.contract import EVENT_TYPES

from .samples import event, with_data

BUNDLED = Draft202012Validator(bundled_event_schema())


def test_it_is_self_contained_valid_json_schema() -> None:
    schema = bundled_event_schema()
    Draft202012Validator.check_schema(schema)
    assert "$ref" not in json.dumps(schema)
    assert [v["properties"]["type"] for v in schema["anyOf"]] == [{"const": t} for t in EVENT_TYPES]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_examples_and_samples_are_valid(event_type: str) -> None:
    examples = json.loads(event_schema_path(event_type).read_text())["examples"]
    for example in [*examples, event(event_type)]:
        assert BUNDLED.is_valid(example), list(BUNDLED.iter_errors(example))[:1]


@pytest.mark.parametrize(
    "raw",
    [
        with_data("device.used", device_id=""),
        with_data("device.used", unknown=1),
        with_data("payment.refunded", amount_minor=10**15 + 1),
        with_data("feedback.submitted", rating=6),
        with_data("device.used", feature="f" * 201),
        event(id="x" * 257),
        event(source="urn:" + "s" * 509),
        event(type="device.exploded"),
        {**event("device.used"), "data": event("payment.completed")["data"]},
    ],
)
def test_what_the_files_refuse_the_bundle_refuses(raw: dict) -> None:
    assert not BUNDLED.is_valid(raw)
