"""The five shipped audiences: each parses, matches the people it is for and no others, and
membership over views of the pure fold equals a reference predicate written here, whatever
the delivery order; membership holds until the earlier of its own and the view's next
change by time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenure.analytics.churn_risk import CARE_THRESHOLD
from tenure.domain import DEFAULT_CONFIG, PersonView, derive, fold
from tenure.domain.audience import AudienceDefinition, is_member, next_membership_change
from tenure.domain.schedule import next_change_at
from tenure.storage.audience_definitions import shipped_audiences

from .scenario import T0, activated, at, item, paid, referred, used
from .strategies import event_sets, shuffled_with_duplicates
from .views import view_of

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = {definition.name: definition for definition in shipped_audiences()}
DAY = timedelta(days=1)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_the_five_audiences_ship_documented() -> None:
    assert set(SHIPPED) == {
        "set-up-help",
        "care-before-churn",
        "win-back",
        "advocates",
        "first-purchase",
    }
    docs = (ROOT / "docs" / "audiences.md").read_text()
    for name, definition in SHIPPED.items():
        assert f"`{name}`" in docs, name
        assert definition.version == 1 and len(definition.description) > 80
    care = SHIPPED["care-before-churn"].filter.churn_risk
    assert care is not None and care.min == CARE_THRESHOLD


# ---- reference predicates, written from the audiences' words (docs/audiences.md) ----------


def set_up_help(v: PersonView, risk: float | None) -> bool:
    if v.erased or v.device_activation_at is not None or v.first_use_at is not None:
        return False
    bought = v.intended_hardware_at
    return bought is not None and timedelta(days=2) <= v.as_of - bought < timedelta(days=31)


def care_before_churn(v: PersonView, risk: float | None) -> bool:
    users = ("user_only", "customer_and_user")
    return v.segment in users and v.stage == "at_risk" and risk is not None and risk >= 0.5


def win_back(v: PersonView, risk: float | None) -> bool:
    return v.entry_path == "connected_buyer" and v.stage == "churned"


def advocates(v: PersonView, risk: float | None) -> bool:
    return (
        v.level in ("strong", "super")
        and "referrer" in v.tags
        and v.stage in ("active", "resurrected")
    )


def first_purchase(v: PersonView, risk: float | None) -> bool:
    return (
        v.segment == "user_only"
        and v.level in ("weak", "strong", "super")
        and v.stage in ("new", "active", "resurrected")
    )


REFERENCE: dict[str, Callable[[PersonView, float | None], bool]] = {
    "set-up-help": set_up_help,
    "care-before-churn": care_before_churn,
    "win-back": win_back,
    "advocates": advocates,
    "first-purchase": first_purchase,
}


# ---- hand-built people: one each audience is for, one it is not --------------------------

DAILY = [activated("d1", "u", 0), *(used("d1", day, "u") for day in range(1, 40))]
CONNECTED = [
    paid("o1", "b", 0, item(device="d1")),
    activated("d1", "b", 1),
    *(used("d1", day, "b") for day in range(2, 11)),
]
LOYAL = [
    paid("o1", "a", 0, item(device="d1")),
    paid("o2", "a", 5, item(category="subscription", sku="plus")),
    activated("d1", "a", 0),
    *(used("d1", day, "a") for day in range(0, 101, 5)),
]
FREE_USER = [activated("d1", "u", 0), *(used("d1", day, "u") for day in range(1, 6))]

EXAMPLES: list[tuple[str, PersonView, float | None, bool]] = [
    # a parent's gift: the child is reached, not the parent
    ("set-up-help", view_of([paid("o1", "p", 0, item(device="d1"), beneficiary="c")], "c", 3),
     None, True),
    ("set-up-help", view_of([paid("o1", "p", 0, item(device="d1"), beneficiary="c")], "p", 3),
     None, False),
    ("set-up-help", view_of([paid("o1", "b", 0, item(device="d1"))], "b", 2.5), None, True),
    ("set-up-help", view_of([paid("o1", "b", 0, item(device="d1")), activated("d1", "b", 1)],
                            "b", 3), None, False),
    # silent 20 days after daily use: at risk
    ("care-before-churn", view_of(DAILY, "u", 59), 0.7, True),
    ("care-before-churn", view_of(DAILY, "u", 59), 0.3, False),
    ("care-before-churn", view_of(DAILY, "u", 40), 0.9, False),  # still active
    # bought, activated the next day, used, silent 40 days: a churned connected buyer
    ("win-back", view_of(CONNECTED, "b", 50), None, True),
    ("win-back", view_of(FREE_USER, "u", 50), None, False),  # churned, but never paid
    # repeat buyer, 21 active days over 100 days, referred a friend: super user
    ("advocates", view_of([*LOYAL, referred("a", "f", 50)], "a", 101), None, True),
    ("advocates", view_of(LOYAL, "a", 101), None, False),  # strong, but refers nobody
    # six days of use, never paid: weak, user only
    ("first-purchase", view_of(FREE_USER, "u", 6), None, True),
    ("first-purchase", view_of([*FREE_USER, paid("o1", "u", 3, item(category="subscription"))],
                               "u", 6), None, False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "view", "risk", "expected"), EXAMPLES)
def test_each_audience_matches_its_people(
    name: str, view: PersonView, risk: float | None, expected: bool
) -> None:
    assert is_member(SHIPPED[name], view, risk) is expected
    assert REFERENCE[name](view, risk) is expected


def test_every_audience_has_a_member_and_a_non_member_example() -> None:
    for name in SHIPPED:
        assert {expected for n, _, _, expected in EXAMPLES if n == name} == {True, False}


# ---- properties over the pure fold --------------------------------------------------------


@st.composite
def lives(draw: st.DrawFn) -> list:
    """One person's life dense enough to reach every audience: use in bursts and pauses
    (with or without an activation), purchases for themself or as a gift from ``g``,
    referrals; plus unrelated events of others."""
    gaps = draw(st.lists(st.integers(1, 6) | st.integers(6, 45), max_size=30))
    days = [draw(st.integers(0, 20))]
    for gap in gaps:
        days.append(days[-1] + gap)
    hours = st.floats(0, 23.99)
    events = []
    if draw(st.booleans()):
        events.append(activated("d1", "p", days[0], hour=draw(hours)))
    events += [used("d1", d, "p", hour=draw(hours)) for d in days[1:]]
    for order in ("o1", "o2", "o3"):
        if draw(st.integers(0, 2)) == 0:
            category = draw(st.sampled_from(("hardware", "subscription")))
            device = draw(st.sampled_from(("d1", "d2", None))) if category == "hardware" else None
            payer, beneficiary = draw(st.sampled_from((("p", None), ("g", "p"), ("p", "c"))))
            when = draw(st.floats(0, days[-1] + 40))
            chosen = item(category=category, device=device)
            events.append(paid(order, payer, when, chosen, beneficiary=beneficiary, hour=0))
    for friend in draw(st.lists(st.sampled_from(("f1", "f2")), max_size=2, unique=True)):
        events.append(referred("p", friend, draw(st.floats(0, days[-1]))))
    events += draw(event_sets(max_size=6, erasures=False))
    offset = draw(st.integers(-20 * 24, 60 * 24))
    return events, at(days[-1]) + timedelta(hours=offset)


anywhen = st.integers(0, 24 * 300).map(lambda h: T0 + timedelta(hours=h))
cases = lives() | st.tuples(event_sets(max_size=30), anywhen)
"""A dense life with an instant near its end, or random events of a few people at any time."""


@PROPERTY
@given(cases, st.data(), st.none() | st.floats(0.0, 1.0))
def test_membership_is_the_reference_predicate_whatever_the_order(
    case: tuple[list, datetime], data: st.DataObject, risk: float | None
) -> None:
    in_order, as_of = case
    shuffled = data.draw(shuffled_with_duplicates(in_order))
    world, again = fold(in_order), fold(shuffled)
    assert set(world.persons) == set(again.persons)
    for person_id, state in again.persons.items():
        view = derive(state, as_of)
        first = derive(world.persons[person_id], as_of)
        for name, definition in SHIPPED.items():
            member = is_member(definition, view, risk)
            assert member is REFERENCE[name](view, risk) and not (member and view.erased), name
            assert member is is_member(definition, first, risk), name


def _holds_until_next_change(definition: AudienceDefinition, state: object, as_of: object) -> None:
    view = derive(state, as_of)  # type: ignore[arg-type]
    mine = next_membership_change(definition, view)
    theirs = next_change_at(state, view, DEFAULT_CONFIG)  # type: ignore[arg-type]
    ends = [t for t in (mine, theirs) if t is not None]
    member = is_member(definition, view, None)
    if ends:
        until = min(ends)
        assert until > view.as_of
        for fraction in (0.25, 0.5, 0.999):
            between = view.as_of + (until - view.as_of) * fraction
            assert is_member(definition, derive(state, between), None) is member  # type: ignore[arg-type]
        if mine is not None and (theirs is None or mine < theirs):
            assert is_member(definition, derive(state, mine), None) is not member  # type: ignore[arg-type]
    else:
        later = view.as_of + 400 * DAY
        assert is_member(definition, derive(state, later), None) is member  # type: ignore[arg-type]


@PROPERTY
@given(cases)
def test_membership_holds_until_the_next_change_by_time(case: tuple[list, datetime]) -> None:
    events, as_of = case
    world = fold(events)
    for state in world.persons.values():
        for name, definition in SHIPPED.items():
            if name != "care-before-churn":  # its risk term is due every midnight instead
                _holds_until_next_change(definition, state, as_of)


def test_a_silent_person_at_risk_is_due_at_the_next_midnight_for_care() -> None:
    view = view_of(DAILY, "u", 59)
    assert next_membership_change(SHIPPED["care-before-churn"], view) == at(60, 0)
    active = view_of(DAILY, "u", 40)  # not at risk: the risk term cannot make them a member
    assert next_membership_change(SHIPPED["care-before-churn"], active) is None
