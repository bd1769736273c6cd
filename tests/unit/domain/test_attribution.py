"""Device state and the per-person contribution derived from it."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings

from tenure.domain import (
    DeviceState,
    DomainEvent,
    PersonState,
    apply_device,
    device_contributions,
    fold,
    person_view_at,
    with_device_contribution,
)
from tenure.domain.contribution import current_user
from tenure.domain.erasure import ERASED

from .scenario import T0, activated, at, deactivated, erasure, item, paid, used
from .strategies import event_sets


def device(*events: DomainEvent) -> DeviceState:
    state = DeviceState("d1")
    for event in events:
        state = apply_device(state, event)
    return state


def day(n: int) -> date:
    return (T0.date()).fromordinal(T0.date().toordinal() + n)


def test_anonymous_use_goes_to_the_user_bound_at_that_time() -> None:
    state = device(
        activated("d1", "alice", 0), used("d1", 3), activated("d1", "bob", 5), used("d1", 7)
    )
    contributions = device_contributions(state)
    assert set(contributions["alice"].days) == {day(0), day(3)}
    assert set(contributions["bob"].days) == {day(5), day(7)}
    assert contributions["bob"].is_current_user
    assert not contributions["alice"].is_current_user
    assert state.product == "watch"
    assert state.activated_at == at(0)


def test_late_activation_re_attributes_past_uses() -> None:
    before = device(activated("d1", "alice", 0), used("d1", 7))
    assert day(7) in device_contributions(before)["alice"].days
    after = apply_device(before, activated("d1", "bob", 5))
    assert day(7) not in device_contributions(after)["alice"].days
    assert day(7) in device_contributions(after)["bob"].days
    assert after.version > before.version


def test_use_before_any_activation_goes_to_the_first_activator() -> None:
    contributions = device_contributions(device(used("d1", 1), activated("d1", "alice", 4)))
    assert set(contributions["alice"].days) == {day(1), day(4)}
    assert contributions["alice"].first_use_at == at(1)


def test_use_without_any_activation_is_unattributed() -> None:
    assert device_contributions(device(used("d1", 1))) == {}


def test_explicit_person_wins_over_the_bound_user() -> None:
    contributions = device_contributions(device(activated("d1", "parent", 0), used("d1", 2, "kid")))
    assert set(contributions["kid"].days) == {day(2)}
    assert set(contributions["parent"].days) == {day(0)}


def test_deactivation_unbinds_the_user() -> None:
    state = device(activated("d1", "alice", 0), deactivated("d1", 3, "resale"), used("d1", 4))
    contributions = device_contributions(state)
    assert set(contributions["alice"].days) == {day(0)}
    assert not contributions["alice"].is_current_user


def test_an_anonymous_day_split_by_an_activation_credits_both_ends() -> None:
    state = device(
        activated("d1", "alice", 0),
        used("d1", 2, hour=8),
        activated("d1", "bob", 2, hour=12),
        used("d1", 2, hour=18),
    )
    contributions = device_contributions(state)
    assert contributions["alice"].days[day(2)].last_at == at(2, 8)
    assert contributions["bob"].days[day(2)].first_at == at(2, 12)
    assert contributions["bob"].days[day(2)].last_at == at(2, 18)


def test_payer_is_the_earliest_order_naming_the_device_and_knows_its_users() -> None:
    state = device(
        paid("o2", "uncle", 3, item(device="d1")),
        paid("o1", "parent", 1, item(device="d1"), beneficiary="kid"),
        activated("d1", "kid", 4),
    )
    assert state.payer_id == "parent" and state.beneficiary_id == "kid"
    contributions = device_contributions(state)
    assert contributions["kid"].someone_else_paid
    assert contributions["parent"].is_payer
    assert dict(contributions["parent"].device_users) == {"kid": at(4)}
    # the superseded payer still gets an (empty) entry so stale contributions are replaced
    assert contributions["uncle"].payer_id == "parent"
    assert not contributions["uncle"].days


def test_a_payment_without_the_device_does_not_touch_it() -> None:
    assert device(paid("o1", "p", 1, item(device="d2"))) == DeviceState("d1")


def test_erasure_redacts_the_person_but_keeps_the_device_facts() -> None:
    events = [
        activated("d1", "alice", 0),
        used("d1", 2),
        used("d1", 3, "alice"),
        paid("o1", "alice", 0, item(device="d1")),
    ]
    world = fold([*events, erasure("alice", 9)])
    state = world.devices["d1"]
    assert "alice" not in state.person_ids
    assert {a.person_id for a in state.activations} == {ERASED}
    assert state.payer_id == ERASED
    assert device_contributions(state) == {}
    assert len(state.tombstones) == 1 and "alice" not in next(iter(state.tombstones))


def test_a_superseded_payer_gets_an_update_that_replaces_the_stale_contribution() -> None:
    first = device(paid("o2", "uncle", 3, item(device="d1")), activated("d1", "kid", 4))
    uncle = PersonState("uncle")
    uncle = with_device_contribution(uncle, first.version, device_contributions(first)["uncle"])
    assert person_view_at(uncle, at(10)).is_sponsor
    second = apply_device(first, paid("o1", "parent", 1, item(device="d1")))
    uncle = with_device_contribution(uncle, second.version, device_contributions(second)["uncle"])
    assert not person_view_at(uncle, at(10)).is_sponsor
    # re-delivering the older contribution cannot bring the stale one back
    stale = device_contributions(first)["uncle"]
    assert with_device_contribution(uncle, first.version, stale) == uncle


@settings(max_examples=300)
@given(event_sets(max_size=25))
def test_current_user_is_the_contribution_marked_current(events: list[DomainEvent]) -> None:
    """``current_user`` (what a device view shows) equals the one contribution with
    ``is_current_user``, for every device of any event set, erasures included."""
    world = fold(events)
    for state in world.devices.values():
        marked = [c.person_id for c in device_contributions(state).values() if c.is_current_user]
        assert len(marked) <= 1
        assert current_user(state) == (marked[0] if marked else None)
