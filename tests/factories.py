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
        "person.consent_changed": {"person_id": f"p{n}", "channel": "email", "granted": True},
    }[event_type]


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


def scenario(seed: int, people: int, *, source: str, end: datetime) -> list[dict[str, Any]]:
    """A small population over ~120 days with every event type and known structure.

    Buyers who activate and use their device, one-time buyers who never activate, gift
    payers whose recipient uses the device, free users who later pay, referrals, feedback,
    refunds, identity links, consent changes (also on an alias, at one instant, and of the
    person later erased) and an erasure. Events are returned in event-time order.
    """
    import random

    rng = random.Random(seed)
    start = end - timedelta(days=120)
    events: list[dict[str, Any]] = []
    counter = iter(range(10**9))

    def emit(event_type: str, at: datetime, data: dict[str, Any]) -> None:
        events.append(
            make_event(
                event_type, source=source, at=at, data=data, event_id=f"s{seed}-{next(counter)}"
            )
        )

    def day(d: float) -> datetime:
        return min(start + timedelta(days=d), end - timedelta(minutes=1))

    for n in range(people):
        kind = ("connected", "one_time", "gift", "free", "super")[n % 5]
        person, device = f"p{seed}-{n}", f"d{seed}-{n}"
        t = rng.uniform(0, 5) if kind == "super" else rng.uniform(0, 60)
        item = {
            "sku": "W-1",
            "category": "hardware",
            "amount_minor": 19900,
            "currency": "EUR",
            "device_id": device,
        }
        if kind in ("connected", "one_time", "super"):
            emit(
                "payment.completed",
                day(t),
                {"order_id": f"o{seed}-{n}", "payer_id": person, "items": [item]},
            )
        if kind == "gift":
            emit(
                "payment.completed",
                day(t),
                {
                    "order_id": f"o{seed}-{n}",
                    "payer_id": person,
                    "items": [item],
                    "beneficiary_id": f"{person}-kid",
                },
            )
        user = f"{person}-kid" if kind == "gift" else person
        if kind != "one_time":
            emit(
                "device.activated",
                day(t + rng.uniform(0, 5)),
                {"device_id": device, "person_id": user, "product": "watch"},
            )
            uses, gap = (22, 5.0) if kind == "super" else (rng.randint(3, 25), rng.uniform(1, 4))
            for u in range(uses):
                emit("device.used", day(t + 1 + u * gap), {"device_id": device, "duration_s": 60})
        if kind == "free" and n % 2:
            emit(
                "payment.completed",
                day(t + 30),
                {
                    "order_id": f"o{seed}-{n}-sub",
                    "payer_id": person,
                    "items": [
                        {
                            "sku": "CLOUD",
                            "category": "subscription",
                            "amount_minor": 499,
                            "currency": "EUR",
                        }
                    ],
                },
            )
        if kind == "super":
            emit(
                "payment.completed",
                day(t + 20),
                {
                    "order_id": f"o{seed}-{n}-b",
                    "payer_id": person,
                    "items": [
                        {
                            "sku": "BAND",
                            "category": "accessory",
                            "amount_minor": 2900,
                            "currency": "EUR",
                        }
                    ],
                },
            )
            emit(
                "referral.completed",
                day(t + 25),
                {"referrer_id": person, "referee_id": f"p{seed}-{(n + 1) % people}"},
            )
            emit(
                "feedback.submitted",
                day(t + 26),
                {"person_id": person, "channel": "app", "rating": 5},
            )
        if kind == "connected" and n % 3 == 0:
            emit(
                "payment.refunded",
                day(t + 2),
                {
                    "order_id": f"o{seed}-{n}",
                    "payer_id": person,
                    "amount_minor": 19900,
                    "currency": "EUR",
                },
            )
    emit("identity.linked", day(70), {"person_id": f"p{seed}-0", "alias_id": f"p{seed}-0-web"})
    emit("feedback.submitted", day(71), {"person_id": f"p{seed}-0-web", "channel": "web"})

    def consent(person: str, channel: str, granted: bool, at: float) -> None:
        data = {"person_id": person, "channel": channel, "granted": granted}
        emit("person.consent_changed", day(at), data)

    consent(f"p{seed}-0", "email", True, 10)
    consent(f"p{seed}-0-web", "email", False, 75)  # the alias withdraws: the human did
    consent(f"p{seed}-0", "push", True, 76)
    if people > 1:
        consent(f"p{seed}-1", "sms", True, 30)
        consent(f"p{seed}-1", "sms", False, 30)  # the same instant: the withdrawal wins
    if people > 3:
        consent(f"p{seed}-3", "in_app", True, 50)
        emit("person.erasure_requested", day(80), {"person_id": f"p{seed}-3"})
    events.sort(key=lambda e: e["time"])
    return events
