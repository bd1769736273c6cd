"""Identity links merge persons; erasure forgets a whole human."""

from __future__ import annotations

from tenure.domain import (
    IdentityGraph,
    PersonState,
    Segment,
    apply_person,
    fold,
    merge_component,
    person_view_at,
    transitions,
    views,
)

from .scenario import activated, at, erasure, item, linked, paid, used
from .views import view_of


def test_canonical_id_is_the_smallest_id_of_the_component() -> None:
    graph = IdentityGraph().with_link("p2", "p9").with_link("p9", "a5").with_link("x1", "x2")
    assert graph.canonical("p9") == "a5"
    assert graph.canonical("p2") == "a5"
    assert graph.component("p2") == {"a5", "p2", "p9"}
    assert graph.canonical("x2") == "x1"
    assert graph.canonical("lonely") == "lonely"
    assert graph.with_link("p9", "p2") == graph


def test_linked_alias_and_person_are_one_customer_and_user() -> None:
    events = [
        paid("o1", "web-7", 0, item(device="d1")),
        activated("d1", "app-3", 1),
        used("d1", 2),
    ]
    apart = fold(events)
    assert person_view_at(apart.persons["web-7"], at(5)).is_sponsor  # looks like a gift
    assert person_view_at(apart.persons["app-3"], at(5)).segment is Segment.USER_ONLY
    together = [*events, linked("web-7", "app-3", 9)]
    view = view_of(together, "web-7", 10)
    assert view.person_id == "app-3"  # "app-3" < "web-7"
    assert view.segment is Segment.CUSTOMER_AND_USER
    assert not view.is_sponsor
    assert "gift_payer" not in view.tags and "gift_recipient" not in view.tags
    assert set(fold(together).persons) == {"app-3"}


def test_later_events_for_the_alias_count_for_the_person() -> None:
    events = [paid("o1", "p1", 0), linked("p1", "z9", 1), paid("o2", "z9", 5)]
    assert view_of(events, "z9", 6).paid_order_count == 2
    assert view_of(events, "p1", 6).paid_order_count == 2


def test_merge_component_is_order_independent() -> None:
    a = apply_person(PersonState("a"), paid("o1", "a", 0))
    b = apply_person(PersonState("b"), paid("o2", "b", 1))
    assert merge_component("a", [a, b]) == merge_component("a", [b, a])
    assert merge_component("a", [a, b]).members == {"a", "b"}


def test_erasure_tombstones_the_person_and_absorbs_later_events() -> None:
    events = [paid("o1", "p", 0), activated("d1", "p", 0), used("d1", 1)]
    before = view_of(events, "p", 2)
    world = fold([*events, erasure("p", 3), paid("o2", "p", 4)])
    state = world.persons["p"]
    assert state.erased and not state.orders and not state.device_contrib
    assert "p" not in views(world, at(5))
    after = person_view_at(state, at(5))
    assert after.erased and after.segment is Segment.PROSPECT and after.tags == ()
    erased = transitions(before, after)
    assert [(t.kind, t.old, t.new) for t in erased] == [("erased", "present", "erased")]
    assert erased[0].at == at(3)


def test_erasing_an_alias_erases_the_whole_human() -> None:
    world = fold([paid("o1", "p1", 0), linked("p1", "p2", 1), erasure("p2", 2)])
    assert world.persons["p1"].erased
    assert world.person_states["p1"].erased and world.person_states["p2"].erased


def test_erased_user_disappears_from_the_sponsor_without_changing_the_sponsorship() -> None:
    events = [
        paid("o1", "parent", 0, item(device="d1"), beneficiary="kid"),
        activated("d1", "kid", 1),
        erasure("kid", 5),
    ]
    world = fold(events)
    parent = world.persons["parent"]
    assert person_view_at(parent, at(6)).is_sponsor
    for contribution in parent.contributions:
        assert "kid" not in contribution.device_users
        assert contribution.beneficiary_id != "kid"
