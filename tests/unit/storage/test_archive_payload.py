"""The archive's payload codec (tenure/storage/archive.py): every envelope comes back equal,
and it is stored compactly."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.contract.topics import EVENT_TYPES
from tenure.storage.archive import (
    DICTIONARY_V1,
    FORMAT_DEFLATE,
    FORMAT_DEFLATE_BIGINT,
    FORMAT_JSON,
    ArchiveFormatError,
    decode_payload,
    encode_payload,
)
from tests.factories import make_event, scenario

SOURCE = "urn:tenure:test"
DICTIONARY_DIGEST = "2beea89bf6b6e579"


def _round_trip(envelope: dict[str, Any]) -> dict[str, Any]:
    payload = encode_payload(envelope["source"], envelope["id"], envelope)
    return decode_payload(envelope["source"], envelope["id"], payload)


def test_every_event_of_a_population_round_trips() -> None:
    events = scenario(3, 30, source=SOURCE, end=datetime(2026, 6, 1, tzinfo=UTC))
    events += [make_event(t, source=SOURCE, n=i) for i, t in enumerate(EVENT_TYPES)]
    for event in events:
        event = {**event, "ingesttime": "2026-06-01T00:00:00.123456Z"}
        back = _round_trip(event)
        assert back == event
        assert orjson.dumps(back, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            event, option=orjson.OPT_SORT_KEYS
        )


def test_id_and_source_are_columns_not_payload() -> None:
    event = make_event("device.used", source=SOURCE)
    payload = encode_payload(SOURCE, event["id"], event)
    assert payload[0] == FORMAT_DEFLATE
    assert decode_payload("urn:other", "other-id", payload) == {
        **event,
        "source": "urn:other",
        "id": "other-id",
    }


def test_an_envelope_whose_id_differs_from_its_row_keeps_its_own() -> None:
    event = make_event("device.used", source=SOURCE)
    payload = encode_payload(SOURCE, "row-id", event)
    assert decode_payload(SOURCE, "row-id", payload) == event


def test_integers_beyond_64_bits_round_trip_exactly() -> None:
    event = make_event("payment.completed", source=SOURCE)
    event["data"]["amount_minor"] = 2**64 + 1
    payload = encode_payload(SOURCE, event["id"], event)
    assert payload[0] == FORMAT_DEFLATE_BIGINT
    assert _round_trip(event)["data"]["amount_minor"] == 2**64 + 1


def test_rows_from_before_the_migration_decode() -> None:
    event = make_event("feedback.submitted", source=SOURCE)
    legacy = bytes((FORMAT_JSON,)) + json.dumps(event).encode()  # what 0014 makes of jsonb
    assert decode_payload(SOURCE, event["id"], legacy) == event


@pytest.mark.parametrize("payload", [b"", b"\x09garbage"])
def test_an_unknown_payload_is_an_error(payload: bytes) -> None:
    with pytest.raises(ArchiveFormatError):
        decode_payload(SOURCE, "x", payload)


def test_the_dictionary_of_format_1_never_changes() -> None:
    # Rows written with it are unreadable without it: a new dictionary needs a new format.
    assert hashlib.sha256(DICTIONARY_V1).hexdigest()[:16] == DICTIONARY_DIGEST


def test_a_typical_envelope_takes_under_a_third_of_its_json() -> None:
    events = scenario(5, 20, source=SOURCE, end=datetime(2026, 6, 1, tzinfo=UTC))
    raw = sum(len(orjson.dumps(e)) for e in events)
    stored = sum(len(encode_payload(SOURCE, e["id"], e)) for e in events)
    assert stored < raw / 3, (stored, raw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    attributes=st.dictionaries(st.text(min_size=1), json_values, max_size=6),
    event_id=st.text(min_size=1),
    source=st.text(min_size=1),
)
def test_any_json_envelope_round_trips(
    attributes: dict[str, Any], event_id: str, source: str
) -> None:
    envelope = {**attributes, "id": event_id, "source": source}
    assert _round_trip(envelope) == envelope
