"""Valid example events of every v1 type, for tests that need real traffic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def example_data(event_type: str, n: int = 0) -> dict[str, Any]:
    """Valid ``data`` for ``event_type`` (ids vary with ``n``)."""
    return {
        "device.activated": {"device_id": f"d{n}", "person_id": f"p{n}", "product": "watch"},
        "device.used": {"device_id": f"d{n}", "duration_s": 42.5, "feature": "steps"},
        "device.deactivated": {"device_id": f"d{n}", "reason": "reset"},
        "payment.completed": {
            "order_id": f"o{n}",
            "payer_id": f"p{n}",
            "items": [
                {
                    "sku": "W-1",
                    "category": "hardware",
                    "amount_minor": 19900,
                    "currency": "EUR",
                    "device_id": f"d{n}",
                }
            ],
            "beneficiary_id": f"kid{n}",
        },
        "payment.refunded": {
            "order_id": f"o{n}",
            "payer_id": f"p{n}",
            "amount_minor": 19900,
            "currency": "EUR",
        },
        "subscription.cancelled": {"person_id": f"p{n}", "sku": "CLOUD-1"},
        "referral.completed": {"referrer_id": f"p{n}", "referee_id": f"q{n}"},
        "feedback.submitted": {"person_id": f"p{n}", "channel": "app", "rating": 5},
        "identity.linked": {"person_id": f"p{n}", "alias_id": f"alias{n}"},
        "person.erasure_requested": {"person_id": f"p{n}"},
    }[event_type]


EVENT_TYPES = (
    "device.activated",
    "device.used",
    "device.deactivated",
    "payment.completed",
    "payment.refunded",
    "subscription.cancelled",
    "referral.completed",
    "feedback.submitted",
    "identity.linked",
    "person.erasure_requested",
)


def make_event(
    event_type: str,
    *,
    source: str = "urn:tenure:test",
    n: int = 0,
    at: datetime | None = None,
    event_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A valid CloudEvents 1.0 envelope of ``event_type``."""
    return {
        "specversion": "1.0",
        "id": event_id or uuid.uuid4().hex,
        "source": source,
        "type": event_type,
        "time": rfc3339(at or datetime.now(UTC) - timedelta(minutes=5)),
        "data": data if data is not None else example_data(event_type, n),
    }
