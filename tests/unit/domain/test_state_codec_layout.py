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
    encode_device_delta,
    encode_device_state,
    encode_identity_graph,
    encode_person_state,
    identity,
    person,
)
from tenure.domain.state_codec.identity import IDENTITY
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


@pytest.mark.parametrize(
    ("kind", "layout", "at_least"),
    [("device", device.DEVICE, 100), ("person", person.PERSON, 200), ("identity", IDENTITY, 10)],
)
def test_documents_written_before_the_split_come_back_byte_for_byte(
    kind: str, layout: Layout[object], at_least: int
) -> None:
    lines = documents(kind)
    assert len(lines) > at_least
    for line in lines:
        value = layout.decode(line)
        assert orjson.dumps(layout.to_json(value), option=orjson.OPT_SORT_KEYS) == line
        assert layout.encode(value) == line


def test_the_public_codec_writes_the_documents_written_before_the_split() -> None:
    for line in documents("device"):
        state = decode_device_state(line)
        assert encode_device_state(state) == line  # the fast path included
        assert decode_device_state(encode_device_delta(state)) == state
    person_lines = documents("person")
    assert any(b'"consent"' in line for line in person_lines)
    assert any(b'"device_contrib":[[' in line for line in person_lines)
    for line in person_lines:
        assert encode_person_state(decode_person_state(line)) == line
    for line in documents("identity"):
        assert encode_identity_graph(decode_identity_graph(line)) == line
