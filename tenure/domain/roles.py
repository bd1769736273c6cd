"""Who pays for whom: sponsors and gifts, as of an instant, with aliases resolved.

A person sponsors a device when they (any of their ids) paid for it and somebody who is
not them used it. A gift is an order naming a beneficiary who is not the payer.
"""

from __future__ import annotations

from datetime import datetime

from tenure.domain.person import PersonState


def sponsored_devices(state: PersonState, as_of: datetime) -> list[str]:
    """Devices this person paid for that somebody else used by ``as_of``."""
    members = state.members
    devices = {
        c.device_id
        for c in state.contributions
        if c.payer_id in members
        and c.paid_at is not None
        and c.paid_at <= as_of
        and any(u not in members and at <= as_of for u, at in c.device_users.items())
    }
    return sorted(devices)


def gives_gifts(state: PersonState, as_of: datetime) -> bool:
    """Paid an order for somebody else, or sponsors a device."""
    for order in state.orders.values():
        if order.at <= as_of and order.beneficiary_id not in (None, *state.members):
            return True
    return bool(sponsored_devices(state, as_of))


def receives_gifts(state: PersonState, as_of: datetime) -> bool:
    """Was named beneficiary by somebody else, or uses a device somebody else paid for."""
    for gift in state.gifts_received.values():
        if gift.at <= as_of and gift.payer_id not in state.members:
            return True
    members = state.members
    for c in state.contributions:
        paid_by_other = c.payer_id is not None and c.payer_id not in members
        if not paid_by_other or c.paid_at is None or c.paid_at > as_of:
            continue
        if c.beneficiary_id in members or any(s.first_at <= as_of for s in c.days.values()):
            return True
    return False
