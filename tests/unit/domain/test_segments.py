"""Roles and segments: customers are not users."""

from __future__ import annotations

from tenure.domain import BuyerKind, Segment

from .scenario import activated, feedback, item, paid, referred, refunded, used
from .views import view_of

GIFT = [
    paid("o1", "parent", 0, item(device="d1"), beneficiary="kid"),
    activated("d1", "kid", 2),
    used("d1", 3),
    used("d1", 4),
]


def test_gift_payer_is_a_customer_only_sponsor() -> None:
    view = view_of(GIFT, "parent", 10)
    assert view.segment is Segment.CUSTOMER_ONLY
    assert view.buyer_kind is BuyerKind.ONE_TIME_BUYER
    assert view.is_sponsor and view.is_customer and not view.is_user
    assert {"gift_payer", "sponsor"} <= set(view.tags)
    assert "hardware_owner" not in view.tags  # bought for somebody else
    assert "never_activated" not in view.tags


def test_gift_recipient_is_user_only() -> None:
    view = view_of(GIFT, "kid", 10)
    assert view.segment is Segment.USER_ONLY
    assert view.buyer_kind is None
    assert not view.is_customer and view.is_user and not view.is_sponsor
    assert "gift_recipient" in view.tags
    assert view.active_days == 3
    assert view.first_activation_at is not None


def test_parent_is_not_a_sponsor_before_the_kid_uses_the_device() -> None:
    assert not view_of(GIFT[:1], "parent", 1).is_sponsor


def test_buyer_who_never_activates_is_a_one_time_buyer() -> None:
    events = [paid("o1", "shopper", 0, item(device="d9"))]
    early = view_of(events, "shopper", 5)
    assert early.segment is Segment.CUSTOMER_ONLY
    assert early.buyer_kind is BuyerKind.ONE_TIME_BUYER
    assert early.activated_within_window is None
    assert "never_activated" not in early.tags
    late = view_of(events, "shopper", 20)
    assert late.activated_within_window is False
    assert "never_activated" in late.tags


def test_free_user_who_later_pays_becomes_customer_and_user() -> None:
    free = [activated("d1", "fan", 0, product="app"), used("d1", 1), used("d1", 2)]
    assert view_of(free, "fan", 5).segment is Segment.USER_ONLY
    paying = [*free, paid("o1", "fan", 10, item(category="service", sku="premium"))]
    view = view_of(paying, "fan", 12)
    assert view.segment is Segment.CUSTOMER_AND_USER
    assert view.first_paid_order_at is not None and view.first_activation_at is not None
    assert view.first_activation_at < view.first_paid_order_at


def test_repeat_buyer() -> None:
    events = [paid("o1", "p", 0), paid("o2", "p", 40)]
    view = view_of(events, "p", 41)
    assert view.buyer_kind is BuyerKind.REPEAT_BUYER
    assert view.paid_order_count == 2
    assert view.second_paid_order_at is not None
    assert "repeat_buyer" in view.tags


def test_prospect_has_no_role() -> None:
    view = view_of([referred("friend", "newbie", 0)], "newbie", 1)
    assert view.segment is Segment.PROSPECT
    assert "referred" in view.tags
    assert view.stage == "none"


def test_full_refund_makes_an_order_not_count() -> None:
    events = [paid("o1", "p", 0, item(20_000)), refunded("o1", "p", 3, 20_000)]
    view = view_of(events, "p", 5)
    assert view.segment is Segment.PROSPECT
    assert view.paid_order_count == 0
    assert view.net_spend == (("EUR", 0),)
    assert "refunded" in view.tags
    assert view.stage == "new"  # paying was still engagement
    assert view_of(events, "p", 2).segment is Segment.CUSTOMER_ONLY  # before the refund


def test_refund_in_parts_and_partial_refunds() -> None:
    partial = [paid("o1", "p", 0, item(20_000)), refunded("o1", "p", 3, 5_000)]
    assert view_of(partial, "p", 5).is_customer
    assert view_of(partial, "p", 5).net_spend == (("EUR", 15_000),)
    in_parts = [*partial, refunded("o1", "p", 4, 15_000)]
    assert not view_of(in_parts, "p", 5).is_customer
    other_currency = [paid("o1", "p", 0, item(20_000)), refunded("o1", "p", 3, 20_000, "USD")]
    assert view_of(other_currency, "p", 5).is_customer


def test_refunded_second_order_leaves_a_one_time_buyer() -> None:
    events = [paid("o1", "p", 0), paid("o2", "p", 5), refunded("o2", "p", 6)]
    assert view_of(events, "p", 7).buyer_kind is BuyerKind.ONE_TIME_BUYER


def test_feedback_counts_as_engagement() -> None:
    view = view_of([feedback("critic", 0), feedback("critic", 2)], "critic", 3)
    assert view.active_days == 2 and view.feedback_count == 2
    assert "feedback_giver" in view.tags
    assert view.segment is Segment.PROSPECT
