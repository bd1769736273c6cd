"""Talking back and bringing others in: referrals, feedback and subscriptions as of an instant."""

from __future__ import annotations

from datetime import datetime

from tenure.domain.person import PersonState
from tenure.domain.spending import paid_orders


def referral_count(state: PersonState, as_of: datetime) -> int:
    """People this person referred by ``as_of`` (referring one's own alias does not count)."""
    return sum(
        1
        for referee, at in state.referrals_made.items()
        if at <= as_of and referee not in state.members
    )


def was_referred(state: PersonState, as_of: datetime) -> bool:
    """Whether somebody else referred this person by ``as_of``."""
    return any(
        at <= as_of and referrer not in state.members for referrer, at in state.referred_by.items()
    )


def feedback_count(state: PersonState, as_of: datetime) -> int:
    """Feedback events submitted by ``as_of`` (distinct event ids)."""
    return sum(1 for at in state.feedback.values() if at <= as_of)


def active_subscriptions(state: PersonState, as_of: datetime) -> list[str]:
    """Subscription skus paid for and not cancelled at or after their latest purchase."""
    latest: dict[str, datetime] = {}
    for order in paid_orders(state, as_of):
        for item in order.items:
            if item.category == "subscription":
                latest[item.sku] = max(order.at, latest.get(item.sku, order.at))
    cancelled = {
        sku
        for sku, bought in latest.items()
        for c in state.cancellations.values()
        if c.sku == sku and bought <= c.at <= as_of
    }
    return sorted(set(latest) - cancelled)


def cancelled_subscriptions(state: PersonState, as_of: datetime) -> list[str]:
    """Subscription skus the person cancelled by ``as_of``."""
    return sorted({c.sku for c in state.cancellations.values() if c.at <= as_of})
