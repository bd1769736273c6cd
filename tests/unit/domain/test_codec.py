"""The versioned JSON codec of device, person and identity states (schema v1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.domain import (
    DeviceActivated,
    DeviceState,
    DeviceUsed,
    DomainEvent,
    IdentityGraph,
    PaymentCompleted,
    PaymentItem,
    PaymentRefunded,
    PersonState,
    fold,
    merge_device,
    merge_identity,
    merge_person,
    person_view_at,
)
from tenure.domain.state_codec import (
    decode_device_state,
    decode_identity_graph,
    decode_person_state,
    device_state_from_json,
    device_state_to_json,
    encode_device_delta,
    encode_device_state,
    encode_identity_graph,
    encode_person_state,
    identity_graph_from_json,
    identity_graph_to_json,
    person_state_from_json,
    person_state_to_json,
)

from .scenario import at, raw_device, raw_person
from .strategies import DEVICES, PERSONS, PROPERTY, event_sets, shuffled_with_duplicates


def all_states(
    events: list[DomainEvent],
) -> tuple[list[DeviceState], list[PersonState], IdentityGraph]:
    """Raw per-key states and the assembled world's devices, per-id states and humans."""
    world = fold(events)
    devices = [raw_device(d, events) for d in DEVICES] + list(world.devices.values())
    persons = [raw_person(p, events) for p in PERSONS]
    persons += list(world.person_states.values()) + list(world.persons.values())
    return devices, persons, world.identity


def through_stdlib_json_bytes(data: bytes) -> bytes:
    """The same document after another JSON stack re-wrote it."""
    return json.dumps(json.loads(data)).encode()


def through_stdlib_json(document: dict[str, Any]) -> Any:
    """What a jsonb column or another JSON stack hands back (plain JSON types only)."""
    return json.loads(json.dumps(document))


# ------------------------------------------------------------------ round trips


@PROPERTY
@given(event_sets())
def test_states_round_trip_through_documents_and_bytes(events: list[DomainEvent]) -> None:
    devices, persons, graph = all_states(events)
    for device in devices:
        assert device_state_from_json(device_state_to_json(device)) == device
        assert device_state_from_json(through_stdlib_json(device_state_to_json(device))) == device
        assert decode_device_state(encode_device_state(device)) == device
        assert decode_device_state(encode_device_delta(device)) == device
        assert decode_device_state(through_stdlib_json_bytes(encode_device_delta(device))) == device
    for person in persons:
        assert person_state_from_json(person_state_to_json(person)) == person
        assert person_state_from_json(through_stdlib_json(person_state_to_json(person))) == person
        assert decode_person_state(encode_person_state(person)) == person
    assert identity_graph_from_json(identity_graph_to_json(graph)) == graph
    assert decode_identity_graph(encode_identity_graph(graph)) == graph


@PROPERTY
@given(st.data(), event_sets())
def test_encoding_is_canonical(data: st.DataObject, events: list[DomainEvent]) -> None:
    devices, persons, graph = all_states(events)
    for device in devices:
        encoded = encode_device_state(device)
        assert encode_device_state(device) == encoded
        assert encode_device_state(decode_device_state(encoded)) == encoded
    for person in persons:
        encoded = encode_person_state(person)
        assert encode_person_state(person) == encoded
        assert encode_person_state(decode_person_state(encoded)) == encoded
    encoded = encode_identity_graph(graph)
    assert encode_identity_graph(decode_identity_graph(encoded)) == encoded
    # Equal states built in another order (other insertion orders) give equal bytes.
    replayed = fold(data.draw(shuffled_with_duplicates(events)))
    world = fold(events)
    for device_id, device in world.devices.items():
        assert encode_device_state(replayed.devices[device_id]) == encode_device_state(device)
    for person_id, person in world.persons.items():
        assert encode_person_state(replayed.persons[person_id]) == encode_person_state(person)
    assert encode_identity_graph(replayed.identity) == encoded


@PROPERTY
@given(st.data(), event_sets())
def test_decoded_person_derives_the_same_view(
    data: st.DataObject, events: list[DomainEvent]
) -> None:
    days = data.draw(st.lists(st.integers(-1, 200), min_size=1, max_size=3))
    for state in fold(events).persons.values():
        decoded = decode_person_state(encode_person_state(state))
        for day in days:
            assert person_view_at(decoded, at(day)) == person_view_at(state, at(day))


@PROPERTY
@given(event_sets(), event_sets(), st.sampled_from(DEVICES), st.sampled_from(PERSONS))
def test_merge_after_round_trip_equals_merge_before(
    a: list[DomainEvent], b: list[DomainEvent], device_id: str, person_id: str
) -> None:
    def again_device(state: DeviceState) -> DeviceState:
        return decode_device_state(encode_device_state(state))

    def again_person(state: PersonState) -> PersonState:
        return decode_person_state(encode_person_state(state))

    x, y = raw_device(device_id, a), raw_device(device_id, b)
    assert merge_device(again_device(x), again_device(y)) == merge_device(x, y)
    p, q = raw_person(person_id, a), raw_person(person_id, b)
    assert merge_person(again_person(p), again_person(q)) == merge_person(p, q)
    left, right = fold(a), fold(b)
    for pid in left.person_states.keys() & right.person_states.keys():
        s, t = left.person_states[pid], right.person_states[pid]
        assert merge_person(again_person(s), again_person(t)) == merge_person(s, t)
    g, h = left.identity, right.identity
    again_g = decode_identity_graph(encode_identity_graph(g))
    again_h = decode_identity_graph(encode_identity_graph(h))
    assert merge_identity(again_g, again_h) == merge_identity(g, h)


# ------------------------------------------------------------------ schema v1, exactly

T1 = datetime(2024, 1, 2, 12, 0, 0, 250, tzinfo=UTC)


def example_device() -> DeviceState:
    events: list[DomainEvent] = [
        DeviceActivated(("fleet", "1"), T1, "d1", "p1", "watch"),
        DeviceUsed(("fleet", "2"), T1 + timedelta(hours=1), "d1"),
        DeviceUsed(("fleet", "3"), T1 + timedelta(hours=2), "d1", "p2"),
    ]
    return raw_device("d1", events)


def example_person() -> PersonState:
    items = (PaymentItem("watch-1", "hardware", 19_900, "EUR", "d1"),)
    events: list[DomainEvent] = [
        PaymentCompleted(("shop", "9"), T1, "o1", "p1", items, "p2"),
        PaymentRefunded(("shop", "10"), T1 + timedelta(days=1), "o1", "p1", 500, "EUR"),
    ]
    return raw_person("p1", events)


def test_device_document_is_schema_v1() -> None:
    assert encode_device_state(example_device()) == (
        b'{"activations":[{"at":"2024-01-02T12:00:00.000250Z","event_id":["fleet","1"],'
        b'"person_id":"p1","product":"watch"}],"deactivations":[],"device_id":"d1",'
        b'"kind":"device","purchases":[],"tombstones":[],'
        b'"uses":[[["2024-01-02","p2"],["2024-01-02T14:00:00.000250Z",'
        b'"2024-01-02T14:00:00.000250Z"]],[["2024-01-02",null],'
        b'["2024-01-02T13:00:00.000250Z","2024-01-02T13:00:00.000250Z"]]],"v":1}'
    )


def test_person_document_is_schema_v1() -> None:
    assert encode_person_state(example_person()) == (
        b'{"aliases":[],"cancellations":[],"device_contrib":[],"erased_at":null,'
        b'"feedback":[],"gifts_received":{},"kind":"person","orders":{"o1":'
        b'{"at":"2024-01-02T12:00:00.000250Z","beneficiary_id":"p2","event_id":["shop","9"],'
        b'"items":[{"amount_minor":19900,"category":"hardware","currency":"EUR",'
        b'"device_id":"d1","sku":"watch-1"}],"order_id":"o1"}},"person_id":"p1",'
        b'"referrals_made":{},"referred_by":{},"refunds":[[["o1",["shop","10"]],'
        b'{"amount_minor":500,"at":"2024-01-03T12:00:00.000250Z","currency":"EUR",'
        b'"event_id":["shop","10"],"order_id":"o1"}]],"v":1}'
    )


def test_identity_document_is_schema_v1() -> None:
    graph = IdentityGraph().with_link("p9", "p1").with_link("p2", "p3")
    assert encode_identity_graph(graph) == (
        b'{"kind":"identity","links":[["p1","p9"],["p2","p3"]],"v":1}'
    )
    reversed_link = {"v": 1, "kind": "identity", "links": [["p9", "p1"], ["p3", "p2"]]}
    assert identity_graph_from_json(reversed_link) == graph


def test_times_are_written_in_utc_and_read_with_any_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = DeviceActivated(("fleet", "1"), T1.astimezone(plus_two), "d1", "p1", "watch")
    assert encode_device_state(raw_device("d1", [local])) == encode_device_state(
        raw_device("d1", [DeviceActivated(("fleet", "1"), T1, "d1", "p1", "watch")])
    )
    document = device_state_to_json(example_device())
    document["activations"][0]["at"] = "2024-01-02T14:00:00.000250+02:00"
    assert device_state_from_json(document) == example_device()
    naive = DeviceActivated(("fleet", "1"), T1.replace(tzinfo=None), "d1", "p1", "watch")
    with pytest.raises(ValueError, match="naive"):
        device_state_to_json(raw_device("d1", [naive]))
    document["activations"][0]["at"] = "2024-01-02T12:00:00"
    with pytest.raises(ValueError, match="offset"):
        device_state_from_json(document)


@pytest.mark.parametrize("version", [None, 0, 2, "1", 1.0, True])
def test_an_unknown_schema_version_is_rejected(version: object) -> None:
    documents: list[dict[str, Any]] = [
        device_state_to_json(example_device()),
        person_state_to_json(example_person()),
        identity_graph_to_json(IdentityGraph()),
    ]
    for document in documents:
        if version is None:
            del document["v"]
        else:
            document["v"] = version
        with pytest.raises(ValueError, match=r"unsupported \w+ state schema version"):
            if document["kind"] == "device":
                device_state_from_json(document)
            elif document["kind"] == "person":
                person_state_from_json(document)
            else:
                identity_graph_from_json(document)
    with pytest.raises(ValueError, match="schema version 2"):
        decode_person_state(b'{"v":2,"kind":"person","person_id":"p1"}')


def test_malformed_documents_are_rejected_with_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a device state"):
        device_state_from_json(person_state_to_json(example_person()))
    with pytest.raises(ValueError, match="not a person state"):
        decode_person_state(encode_device_state(example_device()))
    with pytest.raises(ValueError, match="JSON object"):
        decode_device_state(b"[1, 2]")
    with pytest.raises(ValueError):
        decode_device_state(b"{not json")
    missing = person_state_to_json(example_person())
    del missing["refunds"]
    with pytest.raises(ValueError, match=r"missing keys \['refunds'\]"):
        person_state_from_json(missing)
    extra = device_state_to_json(example_device())
    extra["colour"] = "red"
    with pytest.raises(ValueError, match=r"unexpected keys \['colour'\]"):
        device_state_from_json(extra)
    wrong = person_state_to_json(example_person())
    wrong["orders"]["o1"]["items"][0]["amount_minor"] = "19900"
    with pytest.raises(ValueError, match="expected an integer"):
        person_state_from_json(wrong)


def test_documents_hold_only_plain_json_types() -> None:
    for document in (
        device_state_to_json(example_device()),
        person_state_to_json(example_person()),
        identity_graph_to_json(IdentityGraph().with_link("a", "b")),
    ):
        assert through_stdlib_json(document) == document
        assert orjson.loads(orjson.dumps(document)) == document


def _reference_bytes(device: DeviceState) -> bytes:
    return orjson.dumps(device_state_to_json(device), option=orjson.OPT_SORT_KEYS)


@PROPERTY
@given(event_sets())
def test_fast_device_encoding_writes_the_reference_bytes(events: list[DomainEvent]) -> None:
    devices, _, _ = all_states(events)
    for device in devices:
        assert encode_device_state(device) == _reference_bytes(device)


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["", "p", "p!", "p ", 'p"', "p\\", "pé", "p\n"])),
            st.integers(0, 3 * 86_400_000_000),
        ),
        max_size=12,
    )
)
def test_fast_device_encoding_orders_odd_person_ids_like_canonical_bytes(
    uses: list[tuple[str | None, int]],
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[DomainEvent] = [
        DeviceUsed(("s", str(i)), start + timedelta(microseconds=us), "d", person)
        for i, (person, us) in enumerate(uses)
    ]
    device = raw_device("d", events)
    assert encode_device_state(device) == _reference_bytes(device)
