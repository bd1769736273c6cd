"""Resolving a human (or a device) from its neighbourhood equals the whole-world fold."""

from __future__ import annotations

from hypothesis import given, settings

from tenure.domain.events import DomainEvent
from tenure.domain.neighbourhood import device_neighbourhood, neighbourhood, raw_fold
from tenure.domain.world import assemble, fold

from .strategies import event_sets


@settings(max_examples=150, deadline=None)
@given(event_sets())
def test_each_human_from_its_neighbourhood_equals_the_fold(events: list[DomainEvent]) -> None:
    world = fold(events)
    raw = raw_fold(events)
    for person_id, expected in world.persons.items():
        part = neighbourhood(raw, person_id)
        local = assemble(part.devices, part.person_states, part.identity)
        assert local.persons[person_id] == expected


@settings(max_examples=150, deadline=None)
@given(event_sets())
def test_each_device_from_its_neighbourhood_equals_the_fold(events: list[DomainEvent]) -> None:
    world = fold(events)
    raw = raw_fold(events)
    for device_id, expected in world.devices.items():
        part = device_neighbourhood(raw, device_id)
        local = assemble(part.devices, part.person_states, part.identity)
        assert local.devices[device_id] == expected


def test_an_erased_alias_of_a_device_user_redacts_the_payers_view() -> None:
    """The payer's human depends on the erasure of the kid's *alias*: a component two hops
    away through the shared device."""
    from datetime import UTC, datetime, timedelta

    from tenure.domain.events import (
        DeviceActivated,
        DeviceUsed,
        IdentityLinked,
        PaymentCompleted,
        PaymentItem,
        PersonErasureRequested,
    )

    t = datetime(2026, 3, 1, tzinfo=UTC)
    events: list[DomainEvent] = [
        PaymentCompleted(
            ("s", "1"), t, "o1", "parent", (PaymentItem("W", "hardware", 100, "EUR", "d1"),), "kid"
        ),
        DeviceActivated(("s", "2"), t + timedelta(days=1), "d1", "kid", "watch"),
        DeviceUsed(("s", "3"), t + timedelta(days=2), "d1"),
        IdentityLinked(("s", "4"), t + timedelta(days=3), "kid", "kid-web"),
        PersonErasureRequested(("s", "5"), t + timedelta(days=4), "kid-web"),
    ]
    world = fold(events)
    raw = raw_fold(events)
    part = neighbourhood(raw, "parent")
    assert "kid-web" in part.person_states, "the alias's tombstone is part of the neighbourhood"
    local = assemble(part.devices, part.person_states, part.identity)
    assert local.persons["parent"] == world.persons["parent"]
    assert "kid" not in world.devices["d1"].person_ids


@settings(max_examples=100, deadline=None)
@given(event_sets())
def test_the_index_answers_like_the_unindexed_neighbourhoods(events: list[DomainEvent]) -> None:
    from tenure.domain.neighbourhood import NeighbourhoodIndex

    raw = raw_fold(events)
    index = NeighbourhoodIndex(raw)
    persons = set(raw.person_states) | {p for d in raw.devices.values() for p in d.person_ids}
    for person_id in persons | {"nobody"}:
        assert index.neighbourhood(person_id) == neighbourhood(raw, person_id)
    for device_id in raw.devices:
        assert index.device_neighbourhood(device_id) == device_neighbourhood(raw, device_id)
