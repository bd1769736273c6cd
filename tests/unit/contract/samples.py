"""Realistic example events of every type, and the clock the tests validate against."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
TOLERANCE = timedelta(seconds=300)
TIME = "2024-05-01T12:00:00Z"

_DATA: dict[str, dict[str, Any]] = {
    "device.activated": {"device_id": "dev-8842", "person_id": "p-1001", "product": "thermo-pro-2"},
    "device.used": {
        "device_id": "dev-8842",
        "person_id": "p-1001",
        "duration_s": 742.5,
        "feature": "eco-mode",
    },
    "device.deactivated": {"device_id": "dev-8842", "reason": "resale"},
    "payment.completed": {
        "order_id": "ord-5521",
        "payer_id": "p-2002",
        "beneficiary_id": "p-1001",
        "items": [
            {
                "sku": "thermo-pro-2",
                "category": "hardware",
                "amount_minor": 19900,
                "currency": "EUR",
                "device_id": "dev-8842",
            },
            {
                "sku": "care-plus-12m",
                "category": "subscription",
                "amount_minor": 0,
                "currency": "EUR",
            },
        ],
    },
    "payment.refunded": {
        "order_id": "ord-5521",
        "payer_id": "p-2002",
        "amount_minor": 4900,
        "currency": "EUR",
    },
    "subscription.cancelled": {"person_id": "p-2002", "sku": "care-plus-12m"},
    "referral.completed": {"referrer_id": "p-1001", "referee_id": "p-3003"},
    "feedback.submitted": {"person_id": "p-1001", "channel": "app", "rating": 4},
    "identity.linked": {"person_id": "p-1001", "alias_id": "guest-77f3"},
    "person.erasure_requested": {"person_id": "p-3003"},
    "person.consent_changed": {"person_id": "p-1001", "channel": "email", "granted": True},
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "device.activated": ("device_id", "person_id", "product"),
    "device.used": ("device_id",),
    "device.deactivated": ("device_id", "reason"),
    "payment.completed": ("order_id", "payer_id", "items"),
    "payment.refunded": ("order_id", "payer_id", "amount_minor", "currency"),
    "subscription.cancelled": ("person_id", "sku"),
    "referral.completed": ("referrer_id", "referee_id"),
    "feedback.submitted": ("person_id", "channel"),
    "identity.linked": ("person_id", "alias_id"),
    "person.erasure_requested": ("person_id",),
    "person.consent_changed": ("person_id", "channel", "granted"),
}
"""The required data fields of each type, pinned here so a schema change shows up in review."""


def event(event_type: str = "device.used", **overrides: Any) -> dict[str, Any]:
    """A fresh, valid event of ``event_type``; ``overrides`` replace or add attributes."""
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"evt-{event_type}-1",
        "source": "urn:tenure:test:producer",
        "type": event_type,
        "time": TIME,
        "datacontenttype": "application/json",
        "data": copy.deepcopy(_DATA[event_type]),
    }
    out.update(overrides)
    return out


def with_data(event_type: str, **changes: Any) -> dict[str, Any]:
    """A valid event whose data has ``changes`` applied (a value of ``...`` deletes the field)."""
    out = event(event_type)
    for name, value in changes.items():
        if value is ...:
            del out["data"][name]
        else:
            out["data"][name] = value
    return out
