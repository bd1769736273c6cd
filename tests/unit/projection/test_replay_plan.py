"""The replay plan: components of "keys touched by one event", packed whole into parts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenure.contract.topics import EVENT_TYPES
from tenure.domain.device import device_ids_of
from tenure.domain.events import parse_event
from tenure.domain.person import person_ids_of
from tenure.domain.pseudonymity import person_ids_named
from tenure.projection.replay_plan import (
    Components,
    Plan,
    RangePlan,
    keys_of,
    node,
    packed,
    part_capacity,
)
from tests.factories import make_event

KEYS = st.sampled_from([f"key-{i}" for i in range(30)])
EVENTS = st.lists(st.lists(KEYS, min_size=1, max_size=4), max_size=60)


def _components(events: list[list[str]]) -> list[set[str]]:
    """The connected components of the events' keys, by brute force."""
    groups: list[set[str]] = []
    for keys in events:
        merged = set(keys)
        for group in [g for g in groups if g & merged]:
            groups.remove(group)
            merged |= group
        groups.append(merged)
    return groups


@given(EVENTS, st.integers(min_value=1, max_value=20))
def test_parts_hold_whole_components_within_the_capacity(
    events: list[list[str]], capacity: int
) -> None:
    components = Components()
    for keys in events:
        components.join([node("k", k) for k in keys])
    plan = Plan(components, capacity, None, len(events))
    plan.pack()
    part_of = {k: plan.part_of_root[components.find(node("k", k))] for e in events for k in e}
    for group in _components(events):
        assert len({part_of[k] for k in group}) == 1  # a component is never split
    per_part: dict[int, int] = {}
    for keys in events:
        per_part[part_of[keys[0]]] = per_part.get(part_of[keys[0]], 0) + 1
    assert sum(per_part.values()) == len(events) == sum(components.events.values())
    for part, count in per_part.items():
        roots = {r for r, p in plan.part_of_root.items() if p == part}
        assert count <= capacity or len(roots) == 1  # only a lone component may exceed it
    assert plan.parts == len(per_part)
    assert plan.sizes == per_part  # the events of each part, as the workers are given them
    listed = dict(plan.record_parts(sorted(part_of)))
    assert listed == part_of


@given(EVENTS, st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=20))
def test_ranges_planned_apart_and_packed_together_equal_one_plan(
    events: list[list[str]], cut: int, capacity: int
) -> None:
    def components_of(some: list[list[str]]) -> Components:
        components = Components()
        for keys in some:
            components.join([node("k", k) for k in keys])
        return components

    whole = components_of(events)
    ranges = [
        RangePlan(components_of(events[:cut]), None, len(events[:cut])),
        RangePlan(components_of(events[cut:]), None, len(events[cut:])),
    ]
    joined = packed(ranges, capacity)
    assert ranges == [] and joined.rows == len(events)

    def grouping(components: Components) -> dict[int, tuple[frozenset[int], int]]:
        members: dict[int, set[int]] = {}
        for n in components.parent:
            members.setdefault(components.find(n), set()).add(n)
        return {
            n: (frozenset(members[r]), components.events.get(r, 0))
            for r in members
            for n in members[r]
        }

    assert grouping(joined.components) == grouping(whole)  # same components, same events
    assert sum(joined.sizes.values()) == len(events)


def test_keys_of_reads_every_key_field_as_the_parse_does() -> None:
    body = {
        "type": "payment.completed",
        "data": {
            "payer_id": "~p:payer",
            "beneficiary_id": 42,
            "items": [{"device_id": "dev-1"}, {"sku": "x"}, "junk"],
        },
    }
    assert keys_of(body) == (["dev-1"], ["~p:payer", "42"])
    assert keys_of({"data": {"device_id": "d", "person_id": "p", "alias_id": None}}) == (
        ["d"],
        ["p"],
    )
    assert keys_of(None) == ([], []) and keys_of({"data": "x"}) == ([], [])


def test_the_memory_bound_sets_the_events_per_part() -> None:
    assert part_capacity(1) < part_capacity(2) == 2 * part_capacity(1)
    assert part_capacity(0) == 1


def test_keys_of_names_every_key_the_fold_routes_an_event_to() -> None:
    for event_type in EVENT_TYPES:
        for n in range(3):
            envelope = make_event(event_type, n=n)
            event = parse_event(envelope)
            devices, persons = keys_of(envelope)
            assert device_ids_of(event) <= set(devices), event_type
            named = set(person_ids_of(event)) | set(person_ids_named(event))
            assert named <= set(persons), event_type
