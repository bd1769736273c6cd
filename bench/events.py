"""A realistic, reproducible mix of contract-v1 events for the benchmarks.

Device telemetry dominates real traffic, payments and person events are rarer; every one of
the 11 event types occurs. With ``invalid_share`` > 0 some events are broken in the ways
producers actually break them (missing field, wrong type, unknown type, impossible or future
time, unknown field, mixed currencies, missing envelope attribute).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tenure.contract.topics import EVENT_TYPES

Event = dict[str, Any]

WEIGHTS: dict[str, int] = {
    "device.used": 55,
    "device.activated": 5,
    "device.deactivated": 2,
    "payment.completed": 10,
    "payment.refunded": 2,
    "subscription.cancelled": 2,
    "referral.completed": 3,
    "feedback.submitted": 8,
    "identity.linked": 10,
    "person.erasure_requested": 3,
    "person.consent_changed": 2,
}
"""Relative frequency of each event type in the mix."""

assert set(WEIGHTS) == set(EVENT_TYPES), "the mix must cover every event type"


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _data(event_type: str, rng: random.Random) -> dict[str, Any]:
    person = f"p-{rng.randrange(50_000)}"
    device = f"dev-{rng.randrange(80_000)}"
    currency = rng.choice(("EUR", "USD", "GBP"))
    if event_type == "device.activated":
        return {"device_id": device, "person_id": person, "product": rng.choice(("watch", "ring"))}
    if event_type == "device.used":
        used: dict[str, Any] = {"device_id": device, "duration_s": round(rng.uniform(1, 3600), 1)}
        if rng.random() < 0.7:
            used["person_id"] = person
        if rng.random() < 0.8:
            used["feature"] = rng.choice(("steps", "sleep", "eco-mode", "heart-rate", "gps"))
        return used
    if event_type == "device.deactivated":
        return {"device_id": device, "reason": rng.choice(("reset", "resale", "returned"))}
    if event_type == "payment.completed":
        items = [
            {
                "sku": rng.choice(("W-1", "R-2", "CLOUD-1", "STRAP-3")),
                "category": rng.choice(("hardware", "subscription", "accessory")),
                "amount_minor": rng.randrange(499, 49_900),
                "currency": currency,
                "device_id": f"dev-{rng.randrange(80_000)}",
            }
            for _ in range(rng.choice((1, 1, 1, 2, 3)))
        ]
        paid: dict[str, Any] = {
            "order_id": f"o-{rng.randrange(10**9)}",
            "payer_id": person,
            "items": items,
        }
        if rng.random() < 0.2:
            paid["beneficiary_id"] = f"p-{rng.randrange(50_000)}"
        return paid
    if event_type == "payment.refunded":
        return {
            "order_id": f"o-{rng.randrange(10**9)}",
            "payer_id": person,
            "amount_minor": rng.randrange(499, 49_900),
            "currency": currency,
        }
    if event_type == "subscription.cancelled":
        return {"person_id": person, "sku": "CLOUD-1"}
    if event_type == "referral.completed":
        return {"referrer_id": person, "referee_id": f"p-{rng.randrange(50_000)}"}
    if event_type == "feedback.submitted":
        return {
            "person_id": person,
            "channel": rng.choice(("app", "web")),
            "rating": rng.randint(1, 5),
        }
    if event_type == "identity.linked":
        return {"person_id": person, "alias_id": f"alias-{rng.randrange(10**6)}"}
    if event_type == "person.erasure_requested":
        return {"person_id": person}
    if event_type == "person.consent_changed":
        channel = rng.choice(("email", "push", "sms", "in_app"))
        return {"person_id": person, "channel": channel, "granted": rng.random() < 0.7}
    raise ValueError(f"unknown event type {event_type}")


def _missing_data_field(e: Event, rng: random.Random) -> None:
    e["data"].pop(next(iter(e["data"])))


def _wrong_type(e: Event, rng: random.Random) -> None:
    key = next(iter(e["data"]))
    e["data"][key] = 12345


def _unknown_type(e: Event, rng: random.Random) -> None:
    e["type"] = "device.exploded"


def _impossible_time(e: Event, rng: random.Random) -> None:
    e["time"] = "2026-02-30T10:00:00Z"


def _future_time(e: Event, rng: random.Random) -> None:
    e["time"] = _rfc3339(datetime.now(UTC) + timedelta(days=2))


def _unknown_field(e: Event, rng: random.Random) -> None:
    e["data"]["colour"] = "red"


def _missing_source(e: Event, rng: random.Random) -> None:
    del e["source"]


def _mixed_currency(e: Event, rng: random.Random) -> None:
    e["type"] = "payment.completed"
    e["data"] = _data("payment.completed", rng)
    extra = dict(e["data"]["items"][0])
    extra["currency"] = "JPY" if extra["currency"] != "JPY" else "EUR"
    e["data"]["items"].append(extra)


BREAKAGES: tuple[Callable[[Event, random.Random], None], ...] = (
    _missing_data_field,
    _wrong_type,
    _unknown_type,
    _impossible_time,
    _future_time,
    _unknown_field,
    _missing_source,
    _mixed_currency,
)
"""Ways producers break events; an invalid event of the mix has exactly one of them."""


def event_mix(
    count: int,
    *,
    seed: int = 7,
    invalid_share: float = 0.0,
    source_prefix: str = "urn:tenure:bench",
    now: datetime | None = None,
) -> list[Event]:
    """``count`` events of the realistic mix, ``invalid_share`` of them broken.

    Ids are unique per call (a random run prefix), so repeated runs never collide in the
    ingest ledger or the archive.
    """
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:10]
    at = now or datetime.now(UTC)
    types = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    events: list[Event] = []
    for n in range(count):
        event_type = rng.choices(types, weights)[0]
        event: Event = {
            "specversion": "1.0",
            "id": f"{run}-{n}",
            "source": f"{source_prefix}:{rng.choice(('fleet-eu', 'fleet-us', 'shop', 'app'))}",
            "type": event_type,
            "time": _rfc3339(at - timedelta(seconds=rng.uniform(0, 7 * 86_400))),
            "datacontenttype": "application/json",
            "data": _data(event_type, rng),
        }
        if rng.random() < 0.1:
            event["subject"] = event["data"].get("person_id", "unknown")
        if rng.random() < 0.2:
            event["fwversion"] = f"{rng.randint(1, 4)}.{rng.randint(0, 9)}"
        if invalid_share > 0 and rng.random() < invalid_share:
            rng.choice(BREAKAGES)(event, rng)
        events.append(event)
    return events
