"""Property tests: duplicates, reordering, replays and splits cannot change the state."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenure.domain import (
    DeviceState,
    DomainEvent,
    IdentityGraph,
    PersonState,
    apply_device,
    apply_identity,
    apply_person,
    device_contributions,
    device_singleton,
    fold,
    join_devices,
    join_persons,
    merge_device,
    merge_person,
    merge_world,
    person_singleton,
    person_view_at,
    resolve_persons,
    transitions,
    views,
    with_device_contribution,
)
from tenure.domain.device import device_ids_of
from tenure.domain.person import person_ids_of

from .scenario import at
from .strategies import DEVICES, PERSONS, event_sets, shuffled_with_duplicates

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def device_state(device_id: str, events: list[DomainEvent]) -> DeviceState:
    return join_devices(device_id, (device_singleton(device_id, e) for e in events))


def person_state(person_id: str, events: list[DomainEvent]) -> PersonState:
    return join_persons(person_id, (person_singleton(person_id, e) for e in events))


@PROPERTY
@given(st.data(), event_sets())
def test_any_permutation_and_duplication_folds_to_the_same_world(
    data: st.DataObject, events: list[DomainEvent]
) -> None:
    replayed = data.draw(shuffled_with_duplicates(events))
    assert fold(replayed) == fold(events)


@PROPERTY
@given(st.data(), event_sets())
def test_views_do_not_depend_on_delivery(data: st.DataObject, events: list[DomainEvent]) -> None:
    replayed = data.draw(shuffled_with_duplicates(events))
    as_of = at(data.draw(st.integers(0, 200)))
    assert views(fold(replayed), as_of) == views(fold(events), as_of)


@PROPERTY
@given(event_sets(), event_sets(), event_sets(), st.sampled_from(DEVICES))
def test_device_merge_is_a_semilattice(
    a: list[DomainEvent], b: list[DomainEvent], c: list[DomainEvent], device_id: str
) -> None:
    x, y, z = (device_state(device_id, e) for e in (a, b, c))
    assert merge_device(x, x) == x
    assert merge_device(x, y) == merge_device(y, x)
    assert merge_device(merge_device(x, y), z) == merge_device(x, merge_device(y, z))
    assert merge_device(x, y) == device_state(device_id, a + b)


@PROPERTY
@given(event_sets(), event_sets(), event_sets(), st.sampled_from(PERSONS))
def test_person_merge_is_a_semilattice(
    a: list[DomainEvent], b: list[DomainEvent], c: list[DomainEvent], person_id: str
) -> None:
    x, y, z = (person_state(person_id, e) for e in (a, b, c))
    assert merge_person(x, x) == x
    assert merge_person(x, y) == merge_person(y, x)
    assert merge_person(merge_person(x, y), z) == merge_person(x, merge_person(y, z))
    assert merge_person(x, y) == person_state(person_id, a + b)


@PROPERTY
@given(event_sets(), st.sampled_from(DEVICES), st.sampled_from(PERSONS))
def test_apply_is_merge_with_the_singleton(
    events: list[DomainEvent], device_id: str, person_id: str
) -> None:
    device, person = DeviceState(device_id), PersonState(person_id)
    for event in events:
        assert apply_device(device, event) == merge_device(
            device, device_singleton(device_id, event)
        )
        assert apply_person(person, event) == merge_person(
            person, person_singleton(person_id, event)
        )
        device, person = apply_device(device, event), apply_person(person, event)
    assert device == device_state(device_id, events)
    assert person == person_state(person_id, events)


@PROPERTY
@given(st.data(), event_sets())
def test_folding_two_halves_and_merging_equals_folding_all(
    data: st.DataObject, events: list[DomainEvent]
) -> None:
    cut = data.draw(st.integers(0, len(events)))
    left, right = fold(events[:cut]), fold(events[cut:])
    assert merge_world(left, right) == fold(events)
    assert merge_world(right, left) == fold(events)
    assert merge_world(left, left) == left


@PROPERTY
@given(event_sets(), event_sets())
def test_device_version_is_strictly_monotone(a: list[DomainEvent], b: list[DomainEvent]) -> None:
    for device_id in DEVICES:
        x = device_state(device_id, a)
        joined = merge_device(x, device_state(device_id, b))
        assert x.version <= joined.version
        assert (x.version == joined.version) == (x == joined)


@PROPERTY
@given(st.data(), event_sets(erasures=False))
def test_streaming_per_key_workers_agree_with_the_batch_fold(
    data: st.DataObject, events: list[DomainEvent]
) -> None:
    """Each event goes to its device and person keys; a changed device pushes contributions."""
    devices: dict[str, DeviceState] = {}
    people: dict[str, PersonState] = {}
    graph = IdentityGraph()
    for event in data.draw(shuffled_with_duplicates(events)):
        graph = apply_identity(graph, event)
        for person_id in person_ids_of(event):
            people[person_id] = apply_person(people.get(person_id, PersonState(person_id)), event)
        for device_id in device_ids_of(event):
            before = devices.get(device_id, DeviceState(device_id))
            after = devices[device_id] = apply_device(before, event)
            if after == before:
                continue
            for person_id, contribution in device_contributions(after).items():
                current = people.get(person_id, PersonState(person_id))
                people[person_id] = with_device_contribution(current, after.version, contribution)
    world = fold(events)
    assert devices == dict(world.devices)
    assert resolve_persons(graph, people) == dict(world.persons)


@PROPERTY
@given(st.data(), event_sets())
def test_derived_views_are_well_formed(data: st.DataObject, events: list[DomainEvent]) -> None:
    world = fold(events)
    first, second = sorted(data.draw(st.lists(st.integers(0, 200), min_size=2, max_size=2)))
    for person_id, state in world.persons.items():
        earlier, later = person_view_at(state, at(first)), person_view_at(state, at(second))
        for view in (earlier, later):
            assert (view.churn.bucket is None) == (view.active_days == 0)
            assert (view.churn.silence_days or 0) >= 0
            assert (view.stage == "none") == (view.active_days == 0)
            assert view.is_customer == (view.paid_order_count > 0)
            assert view.tags == tuple(sorted(view.tags))
            assert view.is_super_user == (view.level == "super")
        assert transitions(earlier, later) == transitions(earlier, later)
        assert all(t.person_id == person_id for t in transitions(earlier, later))
        assert later.active_days >= earlier.active_days


@PROPERTY
@given(event_sets(), event_sets(), st.sampled_from(DEVICES))
def test_folding_a_batch_into_a_device_equals_joining_its_singletons(
    before: list[DomainEvent], batch: list[DomainEvent], device_id: str
) -> None:
    from tenure.domain.device import fold_device_events

    for base in (None, device_state(device_id, before)):
        joined = join_devices(
            device_id,
            [base or DeviceState(device_id), *(device_singleton(device_id, e) for e in batch)],
        )
        assert fold_device_events(device_id, base, batch) == joined
