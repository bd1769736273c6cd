"""How much a state knows (tenure/domain/knowledge.py): one rule, monotone under merge."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from tenure.domain import (
    DeviceActivated,
    DeviceState,
    DeviceUsed,
    DomainEvent,
    PaymentCompleted,
    PaymentItem,
    PaymentRefunded,
    PersonErasureRequested,
    PersonState,
    device_knowledge,
    device_version,
    fold,
    merge_device,
    merge_person,
    neighbourhood_knowledge,
    person_knowledge,
)
from tenure.domain.identity import IdentityGraph
from tenure.domain.knowledge import ERASED_PERSON_KNOWLEDGE, TOMBSTONE_WEIGHT
from tenure.domain.neighbourhood import RawWorld, raw_fold

from .scenario import at, raw_device, raw_person
from .strategies import DEVICES, PERSONS, PROPERTY, event_sets, shuffled_with_duplicates


@PROPERTY
@given(event_sets(), event_sets(), st.sampled_from(PERSONS))
def test_person_knowledge_never_decreases_under_merge(
    a: list[DomainEvent], b: list[DomainEvent], person_id: str
) -> None:
    pairs = [(raw_person(person_id, a), raw_person(person_id, b))]
    left, right = fold(a), fold(b)
    pairs += [
        (left.person_states[p], right.person_states[p])
        for p in left.person_states.keys() & right.person_states.keys()
    ]
    for x, y in pairs:
        merged = merge_person(x, y)
        assert person_knowledge(merged) >= max(person_knowledge(x), person_knowledge(y))
        assert (person_knowledge(merged) == ERASED_PERSON_KNOWLEDGE) == merged.erased
        assert person_knowledge(merge_person(x, x)) == person_knowledge(x)


@PROPERTY
@given(event_sets(), event_sets())
def test_device_measures_are_monotone_under_merge(
    a: list[DomainEvent], b: list[DomainEvent]
) -> None:
    left, right = fold(a), fold(b)
    pairs = [(raw_device(d, a), raw_device(d, b)) for d in DEVICES]
    pairs += [
        (left.devices[d], right.devices[d]) for d in left.devices.keys() & right.devices.keys()
    ]
    for x, y in pairs:
        merged = merge_device(x, y)
        assert merged.version == device_version(merged)
        assert device_version(merged) >= max(device_version(x), device_version(y))
        assert (device_version(merged) == device_version(x)) == (merged == x)
        assert device_knowledge(merged) >= max(device_knowledge(x), device_knowledge(y))
        tombstones, facts, span_total = device_version(merged)
        assert device_knowledge(merged) == tombstones * TOMBSTONE_WEIGHT + facts
        assert span_total == sum(span.length_us for span in merged.uses.values())


@PROPERTY
@given(st.data(), event_sets(), event_sets())
def test_neighbourhood_knowledge_never_decreases_and_ignores_order(
    data: st.DataObject, a: list[DomainEvent], b: list[DomainEvent]
) -> None:
    both = raw_fold(a + b)
    assert neighbourhood_knowledge(both) >= neighbourhood_knowledge(raw_fold(a))
    assert neighbourhood_knowledge(both) >= neighbourhood_knowledge(raw_fold(b))
    again = raw_fold(data.draw(shuffled_with_duplicates(a + b)))
    assert again == both
    assert neighbourhood_knowledge(again) == neighbourhood_knowledge(both)


def test_person_knowledge_counts_facts_and_ranks_a_tombstone_on_top() -> None:
    eid = ("shop", "1")
    order = PaymentCompleted(eid, at(1), "o1", "p1", (PaymentItem("w", "hardware", 1, "EUR"),))
    refund = PaymentRefunded(("shop", "2"), at(2), "o1", "p1", 1, "EUR")
    state = raw_person("p1", [order, refund])
    assert person_knowledge(PersonState("p1")) == 0
    assert person_knowledge(state) == 2
    erased = merge_person(state, raw_person("p1", [PersonErasureRequested(eid, at(3), "p1")]))
    assert person_knowledge(erased) == ERASED_PERSON_KNOWLEDGE > person_knowledge(state)


def test_neighbourhood_knowledge_is_the_stored_basis_formula() -> None:
    """Rows in ``persons``/``devices`` hold this number as ``basis``: it must not change."""
    device = raw_device(
        "d1",
        [
            DeviceActivated(("f", "1"), at(1), "d1", "p1", "watch"),
            DeviceUsed(("f", "2"), at(1) + timedelta(hours=1), "d1", "p1"),
            DeviceUsed(("f", "3"), at(2), "d1"),
        ],
    )
    tombstoned = merge_device(device, DeviceState("d1", tombstones=frozenset({"p9"})))
    person = raw_person("p1", [PaymentRefunded(("s", "4"), at(2), "o1", "p1", 1, "EUR")])
    world = RawWorld(
        devices={"d1": tombstoned},
        person_states={"p1": person},
        identity=IdentityGraph().with_link("p1", "p2"),
    )
    assert neighbourhood_knowledge(world) == (1 << 32) + 3 + 1 + 1
