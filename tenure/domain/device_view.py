"""The derived view of one device: a pure function of its state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tenure.domain.contribution import current_user
from tenure.domain.device import DeviceState


@dataclass(frozen=True, slots=True)
class DeviceView:
    """What the platform says about one device."""

    device_id: str
    product: str | None
    user_id: str | None
    """The person the device is bound to now (latest binding change), if any."""
    payer_id: str | None
    beneficiary_id: str | None
    is_sponsored: bool
    """Somebody other than its user paid for it (a gift, an employer, a parent)."""
    activated_at: datetime | None
    first_use_at: datetime | None
    last_use_at: datetime | None
    active_days: int
    deactivated_at: datetime | None
    """When it was last unbound, if its latest binding change is a deactivation (at the same
    instant an activation wins, as in attribution)."""


def device_view_of(state: DeviceState) -> DeviceView:
    """The view of a device from everything known about it."""
    user_id = current_user(state)
    last_activation = max((a.at for a in state.activations), default=None)
    last_deactivation = max((d.at for d in state.deactivations), default=None)
    deactivated_at = (
        last_deactivation
        if last_deactivation is not None
        and (last_activation is None or last_deactivation > last_activation)
        else None
    )
    payer_id = state.payer_id
    return DeviceView(
        device_id=state.device_id,
        product=state.product,
        user_id=user_id,
        payer_id=payer_id,
        beneficiary_id=state.beneficiary_id,
        is_sponsored=payer_id is not None and user_id is not None and payer_id != user_id,
        activated_at=state.activated_at,
        first_use_at=state.first_use_at,
        last_use_at=state.last_use_at,
        active_days=len({day for day, _ in state.uses}),
        deactivated_at=deactivated_at,
    )
