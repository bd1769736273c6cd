"""The schedule: a view stays as it is until ``next_change_at``, and changes there."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain import DEFAULT_CONFIG, LifecycleConfig, PersonView, fold, person_view_at
from tenure.domain.churn import NO_ENGAGEMENT, churn_inputs_at
from tenure.domain.schedule import next_change_at

from .scenario import T0, activated, at, item, paid, used
from .strategies import event_sets

CONFIGS = st.sampled_from(
    (
        DEFAULT_CONFIG,
        LifecycleConfig(inactivity_window_days=3, activation_window_days=2),
        LifecycleConfig(inactivity_window_days=10, at_risk_fraction=0.3),
    )
)
AS_OF = st.integers(0, 150 * 24 * 3600 * 1_000_000).map(lambda us: T0 + timedelta(microseconds=us))


def timeless(view: PersonView) -> PersonView:
    """The view without the parts that change continuously (as_of, churn inputs)."""
    return replace(view, as_of=T0, churn=NO_ENGAGEMENT)


def aged_churn(view: PersonView, later: PersonView, config: LifecycleConfig) -> None:
    """Churn inputs aged from the stored ones equal the churn inputs derived later."""
    if view.last_engagement_at is None:
        assert later.churn == NO_ENGAGEMENT
        return
    aged = churn_inputs_at(view.last_engagement_at.date(), view.churn.bucket, later.as_of.date())
    assert aged == later.churn


@settings(max_examples=300, deadline=None)
@given(
    events=event_sets(max_size=16),
    as_of=AS_OF,
    config=CONFIGS,
    fractions=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4),
)
def test_the_view_holds_until_next_change_at_and_changes_there(
    events: list, as_of: datetime, config: LifecycleConfig, fractions: list[float]
) -> None:
    world = fold(events)
    for state in world.persons.values():
        view = person_view_at(state, as_of, config)
        due = next_change_at(state, view, config)
        if due is None:
            later = [as_of + timedelta(days=d) for d in (1, 40, 400)]
        else:
            assert due > as_of
            span = due - as_of
            later = [as_of + span * f for f in fractions] + [due - timedelta(microseconds=1)]
        for instant in later:
            if instant < as_of or (due is not None and instant >= due):
                continue  # a float fraction of the span may round onto its end
            seen = person_view_at(state, instant, config)
            assert timeless(seen) == timeless(view), (instant, due)
            aged_churn(view, seen, config)
        if due is not None:
            assert timeless(person_view_at(state, due, config)) != timeless(view)


def test_a_daily_user_is_due_at_risk_then_churned_then_never() -> None:
    world = fold([activated("d1", "p", 0), *(used("d1", n) for n in range(1, 10))])
    state = world.persons["p"]
    view = person_view_at(state, at(12), DEFAULT_CONFIG)
    due = next_change_at(state, view, DEFAULT_CONFIG)
    assert due == at(9 + 15, hour=0)  # last day + R (15) at midnight: at risk
    view = person_view_at(state, due, DEFAULT_CONFIG)
    due = next_change_at(state, view, DEFAULT_CONFIG)
    assert due == at(9 + 30, hour=0)  # last day + W: churned
    view = person_view_at(state, due, DEFAULT_CONFIG)
    assert next_change_at(state, view, DEFAULT_CONFIG) is None


def test_a_fact_after_as_of_and_the_activation_window_are_due() -> None:
    world = fold([paid("o1", "p", 0)])  # hardware for themself
    state = world.persons["p"]
    view = person_view_at(state, at(3), DEFAULT_CONFIG)
    assert view.activated_within_window is None
    assert next_change_at(state, view, DEFAULT_CONFIG) == at(14)  # purchase + A
    early = person_view_at(state, at(0, hour=6), DEFAULT_CONFIG)
    assert next_change_at(state, early, DEFAULT_CONFIG) == at(0)  # the order itself


@st.composite
def rhythms(draw: st.DrawFn) -> tuple[list, datetime]:
    """One person's use in bursts and pauses (comebacks), maybe a purchase of either kind,
    and an instant near the end of it."""
    gaps = draw(st.lists(st.integers(1, 3) | st.integers(3, 40), max_size=25))
    days = [draw(st.integers(0, 10))]
    for gap in gaps:
        days.append(days[-1] + gap)
    hours = st.floats(0, 23.99)
    events = [activated("d1", "p", days[0], hour=draw(hours))]
    events += [used("d1", d, hour=draw(hours)) for d in days[1:]]
    for order in ("o1", "o2"):
        if draw(st.booleans()):
            category = draw(st.sampled_from(("hardware", "subscription")))
            paid_on = draw(st.floats(-20, days[-1] + 5))
            events.append(paid(order, "p", paid_on, item(category=category), hour=0))
    offset = draw(st.integers(-10 * 24 * 3600, 60 * 24 * 3600))
    return events, at(days[-1]) + timedelta(
        seconds=offset, microseconds=draw(st.integers(0, 10**6))
    )


@settings(max_examples=400, deadline=None)
@given(case=rhythms(), config=CONFIGS, fraction=st.floats(0, 1))
def test_comebacks_and_purchases_hold_until_next_change_at(
    case: tuple[list, datetime], config: LifecycleConfig, fraction: float
) -> None:
    events, as_of = case
    state = fold(events).persons["p"]
    view = person_view_at(state, as_of, config)
    due = next_change_at(state, view, config)
    end = as_of + timedelta(days=200) if due is None else due
    instant = min(as_of + (end - as_of) * fraction, end - timedelta(microseconds=1))
    seen = person_view_at(state, instant, config)
    assert timeless(seen) == timeless(view)
    aged_churn(view, seen, config)
    if due is not None:
        assert timeless(person_view_at(state, due, config)) != timeless(view)


def test_the_entry_path_and_the_activation_window_have_their_own_deadlines() -> None:
    events = [paid("o1", "p", 0, item(category="subscription")), paid("o2", "p", 5)]
    state = fold(events).persons["p"]
    view = person_view_at(state, at(6), DEFAULT_CONFIG)
    assert next_change_at(state, view, DEFAULT_CONFIG) == at(14)  # entry path decided
    view = person_view_at(state, at(14), DEFAULT_CONFIG)
    assert view.entry_path == "one_time_buyer"
    assert next_change_at(state, view, DEFAULT_CONFIG) == at(19)  # hardware window closes
    assert person_view_at(state, at(19), DEFAULT_CONFIG).activated_within_window is False
