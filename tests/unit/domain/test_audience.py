"""The audience language: parsing, membership, its time edges and suppressions."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain.audience import FILTER_TERMS as _TERMS  # the term names
from tenure.domain.audience import (
    SUPPRESSION_REASONS,
    AudienceError,
    Channel,
    is_member,
    next_membership_change,
    parse_audience,
    quiet_until,
    suppression_of,
)
from tenure.domain.events import CONSENT_CHANNELS
from tenure.domain.stage import Stage
from tenure.errors import TenureError

from .scenario import activated, at, consent, item, paid, used
from .views import view_of


def doc(**changes: Any) -> dict[str, Any]:
    """A valid document with some fields changed."""
    base: dict[str, Any] = {
        "name": "set-up-help",
        "description": "Bought, never switched on.",
        "channel": "email",
        "quiet_days": 7,
        "contact": "gift_recipient_else_payer",
        "filter": {"activated": False, "days_since_purchase": {"min": 2, "max": 30}},
    }
    base.update(changes)
    return base


SET_UP = parse_audience(doc())


def test_channels_are_the_consent_channels() -> None:
    assert tuple(Channel) == CONSENT_CHANNELS


def test_a_document_round_trips() -> None:
    full = doc(
        version=3,
        filter={
            "segment": ["user_only", "customer_and_user"],
            "entry_path": ["connected_buyer"],
            "stage": ["at_risk"],
            "level": ["strong", "super"],
            "tier": ["gold", "none"],
            "tags": ["referrer"],
            "without_tags": ["refunded"],
            "products": ["watch"],
            "roles": ["sponsor"],
            "activated": True,
            "churn_risk": {"min": 0.5},
            "days_since_purchase": {"max": 10},
            "days_since_activation": {"min": 1, "max": 2},
            "days_since_last_engagement": {"min": 0},
        },
    )
    definition = parse_audience(full)
    assert definition.version == 3
    assert parse_audience(definition.to_document()) == definition
    assert definition.to_document()["filter"]["segment"] == ["customer_and_user", "user_only"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Bad Name"}, "audience name"),
        ({"name": "set-up-help\n"}, "audience name"),
        ({"quiet_days": 10**9}, "audience quiet_days"),
        (
            {"filter": {"days_since_purchase": {"min": 10**9}}},
            "audience filter.days_since_purchase.min",
        ),
        ({"filter": {"products": ["watch\n"]}}, "audience filter.products[]"),
        ({"channel": "pigeon"}, "audience channel"),
        ({"quiet_days": -1}, "audience quiet_days"),
        ({"quiet_days": True}, "audience quiet_days"),
        ({"version": 0}, "audience version"),
        ({"description": " "}, "audience description"),
        ({"contact": "neighbour"}, "audience contact"),
        ({"colour": "red"}, "audience colour"),
        ({"filter": {"stage": ["asleep"]}}, "audience filter.stage[]"),
        ({"filter": {"stage": []}}, "audience filter.stage"),
        ({"filter": {"segment": "user_only"}}, "audience filter.segment"),
        ({"filter": {"tags": ["famous"]}}, "audience filter.tags[]"),
        ({"filter": {"tier": ["diamond"]}}, "audience filter.tier[]"),
        ({"filter": {"churn_risk": {"min": 1.5}}}, "audience filter.churn_risk.min"),
        ({"filter": {"churn_risk": {"min": 0.6, "max": 0.5}}}, "audience filter.churn_risk"),
        ({"filter": {"days_since_purchase": {"least": 2}}}, "audience filter.days_since_purchase"),
        (
            {"filter": {"days_since_activation": {"min": 2.5}}},
            "audience filter.days_since_activation.min",
        ),
        ({"filter": {"activated": "no"}}, "audience filter.activated"),
        ({"filter": {"speed": ["fast"]}}, "audience filter.speed"),
        (
            {"filter": {"tags": ["referrer"], "without_tags": ["referrer"]}},
            "audience filter.without_tags",
        ),
        ({"filter": []}, "audience filter"),
    ],
)
def test_a_bad_document_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(AudienceError) as raised:
        parse_audience(doc(**changes))
    assert str(raised.value).startswith(field + ":")
    assert isinstance(raised.value, TenureError) and isinstance(raised.value, ValueError)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    ["name", "version", "description", "channel", "quiet_days", "contact", "filter"]
)
TERMS = st.sampled_from([*_TERMS, "other"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=3), st.dictionaries(TERMS, JSON, max_size=3))
def test_any_document_parses_or_is_refused_with_an_audience_error(
    fields: dict[str, Any], terms: dict[str, Any]
) -> None:
    document = {**doc(), **fields}
    if "filter" not in fields:
        document["filter"] = {**document["filter"], **terms}
    try:
        definition = parse_audience(document)
    except AudienceError:
        return
    assert parse_audience(definition.to_document()) == definition


def test_set_up_help_reaches_the_gift_recipient_not_the_payer() -> None:
    events = [paid("o1", "parent", 0, item(device="d1"), beneficiary="child")]
    assert is_member(SET_UP, view_of(events, "child", 3), None)
    assert not is_member(SET_UP, view_of(events, "parent", 3), None)
    assert not is_member(SET_UP, view_of(events, "child", 1.9), None)  # < 2 days


def test_set_up_help_reaches_a_payer_who_bought_for_themself_until_activation() -> None:
    events = [paid("o1", "buyer", 0, item(device="d1"))]
    assert is_member(SET_UP, view_of(events, "buyer", 2), None)
    assert not is_member(SET_UP, view_of(events, "buyer", 31), None)  # past max 30 days
    events.append(activated("d1", "buyer", 2.5))
    assert not is_member(SET_UP, view_of(events, "buyer", 3), None)


def test_membership_changes_by_time_at_the_filter_edges() -> None:
    events = [paid("o1", "buyer", 0, item(device="d1"))]
    view = view_of(events, "buyer", 1)
    assert next_membership_change(SET_UP, view) == at(2)  # enters 2 days after purchase
    inside = view_of(events, "buyer", 10)
    assert next_membership_change(SET_UP, inside) == at(31)  # leaves after day 30
    assert next_membership_change(SET_UP, view_of(events, "buyer", 40)) is None
    done = view_of([*events, activated("d1", "buyer", 0.5)], "buyer", 1)
    assert next_membership_change(SET_UP, done) is None  # a static term fails


def test_a_churn_risk_term_is_false_when_unknown_and_due_every_midnight() -> None:
    care = parse_audience(
        doc(
            name="care", contact="person", filter={"stage": ["at_risk"], "churn_risk": {"min": 0.6}}
        )
    )
    events = [activated("d1", "u", 0), *(used("d1", day, "u") for day in range(1, 40))]
    view = view_of(events, "u", 59)
    assert view.stage is Stage.AT_RISK
    assert is_member(care, view, 0.7)
    assert not is_member(care, view, 0.5)
    assert not is_member(care, view, None)
    assert next_membership_change(care, view) == at(60, 0)


def test_suppressions_in_their_documented_order() -> None:
    events = [paid("o1", "buyer", 0, item(device="d1"))]
    view = view_of(events, "buyer", 3)
    assert suppression_of(SET_UP, view, None) == "no_consent"
    granted = view_of([*events, consent("buyer", "email", True, 1)], "buyer", 3)
    assert suppression_of(SET_UP, granted, None) is None
    assert suppression_of(SET_UP, granted, at(-4) + timedelta(seconds=1)) == "quiet_period"
    assert suppression_of(SET_UP, granted, at(-4)) is None  # 7 days ago: quiet period over
    assert quiet_until(SET_UP, at(-4)) == at(3)
    withdrawn = view_of([*events, consent("buyer", "email", False, 2)], "buyer", 3)
    assert suppression_of(SET_UP, withdrawn, None) == "no_consent"
    assert suppression_of(SET_UP, replace(granted, erased=True), None) == "erased"
    assert SUPPRESSION_REASONS == ("erased", "no_consent", "quiet_period")


def test_intended_hardware_is_the_first_hardware_meant_for_the_person() -> None:
    gift = paid("o1", "p", 5, item(device="d1"), beneficiary="c")
    own = paid("o2", "c", 3, item(device="d2"))
    assert view_of([gift], "c", 10).intended_hardware_at == at(5)
    assert view_of([gift], "p", 10).intended_hardware_at is None  # bought for somebody else
    assert view_of([gift, own], "c", 10).intended_hardware_at == at(3)  # the earlier
    assert view_of([gift, own], "c", 4).intended_hardware_at == at(3)  # as of: gift not yet
    subscription = paid("o3", "s", 1, item(category="subscription"))
    assert view_of([subscription], "s", 10).intended_hardware_at is None
    # a gift naming no device: the recipient's hardware is not known (docs/audiences.md)
    blind = paid("o4", "p", 1, item(), beneficiary="b")
    assert view_of([blind], "b", 10).intended_hardware_at is None
