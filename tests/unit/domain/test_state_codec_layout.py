"""The state codec's field tables: one per type, complete, and the frozen v1 bytes.

``data/*_states_v1.jsonl`` hold documents written by the codec before it was split into
field tables (``tenure/domain/codec.py`` at f475562): states of a simulated population,
of random event sets and devices used by oddly named persons. Today's decoder must read
them and today's encoders must write exactly the same bytes back.
"""

from __future__ import annotations

import dataclasses
import linecache
from datetime import timedelta, timezone
from pathlib import Path
from types import MappingProxyType

import orjson
import pytest

from tenure.domain.lattice import DaySpan
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


# ------------------------------------------------------------------ the compiled functions

COMPILED = ("to_json", "encode", "encode_fast", "from_json", "decode")


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.where)
def test_every_layout_runs_the_functions_compiled_from_its_source(layout: Layout[object]) -> None:
    filename = f"<state_codec layout {layout.where}>"
    for name in COMPILED:
        code = getattr(layout, name).__code__
        assert code.co_filename == filename
        assert linecache.getline(filename, code.co_firstlineno).startswith(f"def {name}(")
    assert layout.source.count("\ndef ") == len(COMPILED) - 1


def test_the_device_source_is_straight_line_code_with_its_records_inlined() -> None:
    source = device.DEVICE.source
    for record in (device.ACTIVATION, device.DEACTIVATION, device.PURCHASE):
        for name in record.names:  # written and read inside the device's own functions
            assert f"'{name}': x" in source and f"['{name}']" in source
    assert "shape" not in source.lower() and "zip(" not in source
    encode_fast = source[source.index("def encode_fast") : source.index("def from_json")]
    assert "_write_time" not in encode_fast  # orjson writes the times of the delta log


def test_a_layout_without_a_fast_form_says_so() -> None:
    with pytest.raises(TypeError, match="no fast form"):
        person.PERSON.encode_fast(decode_person_state(documents("person")[0]))


def _device_document() -> dict[str, object]:
    line = next(line for line in documents("device") if b'"activations":[{' in line)
    document: dict[str, object] = orjson.loads(line)
    return document


def test_a_record_that_is_not_a_plain_dict_is_read_by_the_checked_path() -> None:
    document = _device_document()
    state = device.DEVICE.from_json(document)
    activations = document["activations"]
    assert isinstance(activations, list)
    document["activations"] = [MappingProxyType(a) for a in activations]
    assert device.DEVICE.from_json(document) == state
    document["activations"] = [{k: v for k, v in a.items() if k != "product"} for a in activations]
    with pytest.raises(ValueError, match=r"device\.activations\[\]: missing keys \['product'\]"):
        device.DEVICE.from_json(document)


@pytest.mark.parametrize(
    ("use", "message"),
    [
        ([["2024-01-02", 5], ["2024-01-02T00:00:00Z"] * 2], "expected a string"),
        ([["2024-01-02", None], ["2024-01-02T00:00:00Z", 7]], "expected a string"),
        ([["2024-01-02", None], ["2024-01-02T00:00:00"] * 2], "expected an RFC 3339 time with"),
        ([["2024-13-02", None], ["2024-01-02T00:00:00Z"] * 2], "expected an ISO date"),
        ([["2024-01-02"], ["2024-01-02T00:00:00Z"] * 2], "expected a list of 2"),
        ([["2024-01-02", None]], "expected a list of 2"),
    ],
)
def test_values_read_inline_are_checked_and_errors_say_where(use: object, message: str) -> None:
    document = _device_document()
    document["uses"] = [use]
    with pytest.raises(ValueError, match=rf"device\.uses\[\]: {message}"):
        device.DEVICE.from_json(document)


def test_uses_at_another_offset_or_naive_take_the_reference_path() -> None:
    utc = device.DEVICE.decode(documents("device")[0])
    assert utc.uses
    plus_two = timezone(timedelta(hours=2))
    shifted = dataclasses.replace(
        utc,
        uses={
            key: DaySpan(span.first_at.astimezone(plus_two), span.last_at.astimezone(plus_two))
            for key, span in utc.uses.items()
        },
    )
    assert encode_device_state(shifted) == encode_device_state(utc) == documents("device")[0]
    naive = dataclasses.replace(
        utc,
        uses={
            key: DaySpan(span.first_at.replace(tzinfo=None), span.last_at.replace(tzinfo=None))
            for key, span in utc.uses.items()
        },
    )
    with pytest.raises(ValueError, match="naive"):
        encode_device_state(naive)
