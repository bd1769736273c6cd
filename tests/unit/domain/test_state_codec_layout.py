"""The state codec's field tables: one per type, complete, and the frozen v1 bytes.

``data/*_states_v1.jsonl`` hold documents written by the codec before it was split into
field tables (``tenure/domain/codec.py`` at f475562): states of a simulated population,
of random event sets and devices used by oddly named persons. Today's decoder must read
them and today's encoders must write exactly the same bytes back.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from tenure.domain.state_codec import (
    decode_device_state,
    decode_identity_graph,
    decode_person_state,
    device,
    device_state_to_json,
    encode_device_delta,
    encode_device_state,
    encode_identity_graph,
    encode_person_state,
    identity,
    identity_graph_to_json,
    person,
    person_state_to_json,
)
from tenure.domain.state_codec.layout import Layout

DATA = Path(__file__).parent / "data"

LAYOUTS = [
    value
    for module in (device, person, identity)
    for value in vars(module).values()
    if isinstance(value, Layout)
]


def documents(kind: str) -> list[bytes]:
    return (DATA / f"{kind}_states_v1.jsonl").read_bytes().splitlines()


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.where)
def test_every_field_table_names_exactly_the_fields_of_its_type(layout: Layout[object]) -> None:
    assert dataclasses.is_dataclass(layout.build)
    assert list(layout.names) == [f.name for f in dataclasses.fields(layout.build)]


def test_every_record_type_of_the_documents_has_one_table() -> None:
    built = [layout.build for layout in LAYOUTS]
    assert len(built) == len(set(built)) == 14


def test_device_documents_written_before_the_split_come_back_byte_for_byte() -> None:
    lines = documents("device")
    assert len(lines) > 100
    for line in lines:
        state = decode_device_state(line)
        assert encode_device_state(state) == line
        assert orjson.dumps(device_state_to_json(state), option=orjson.OPT_SORT_KEYS) == line
        assert decode_device_state(encode_device_delta(state)) == state


def test_person_documents_written_before_the_split_come_back_byte_for_byte() -> None:
    lines = documents("person")
    assert len(lines) > 200
    assert any(b'"consent"' in line for line in lines)
    assert any(b'"device_contrib":[[' in line for line in lines)
    for line in lines:
        state = decode_person_state(line)
        assert encode_person_state(state) == line
        assert orjson.dumps(person_state_to_json(state), option=orjson.OPT_SORT_KEYS) == line


def test_identity_documents_written_before_the_split_come_back_byte_for_byte() -> None:
    lines = documents("identity")
    assert len(lines) > 10
    for line in lines:
        graph = decode_identity_graph(line)
        assert encode_identity_graph(graph) == line
        assert orjson.dumps(identity_graph_to_json(graph), option=orjson.OPT_SORT_KEYS) == line
