"""Concise builders of domain events for example-based tests (event time in days)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tenure.domain import (
    DeviceActivated,
    DeviceDeactivated,
    DeviceState,
    DeviceUsed,
    DomainEvent,
    EventId,
    FeedbackSubmitted,
    IdentityLinked,
    PaymentCompleted,
    PaymentItem,
    PaymentRefunded,
    PersonConsentChanged,
    PersonErasureRequested,
    PersonState,
    ReferralCompleted,
    SubscriptionCancelled,
    device_singleton,
    join_devices,
    join_persons,
    person_singleton,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
_ids = itertools.count()


def raw_device(device_id: str, events: list[DomainEvent]) -> DeviceState:
    """The raw (per-key, unassembled) state of one device after ``events``."""
    return join_devices(device_id, (device_singleton(device_id, e) for e in events))


def raw_person(person_id: str, events: list[DomainEvent]) -> PersonState:
    """The raw (per-key, unassembled) state of one person id after ``events``."""
    return join_persons(person_id, (person_singleton(person_id, e) for e in events))


def at(day: float, hour: float = 12) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


def eid() -> EventId:
    return ("test", f"e{next(_ids)}")


def activated(
    device: str, person: str, day: float, hour: float = 12, product: str = "watch"
) -> DomainEvent:
    return DeviceActivated(eid(), at(day, hour), device, person, product)


def used(device: str, day: float, person: str | None = None, hour: float = 12) -> DomainEvent:
    return DeviceUsed(eid(), at(day, hour), device, person, 60.0, "steps")


def deactivated(device: str, day: float, reason: str = "reset", hour: float = 12) -> DomainEvent:
    return DeviceDeactivated(eid(), at(day, hour), device, reason)


def item(
    amount: int = 10_000,
    category: str = "hardware",
    device: str | None = None,
    currency: str = "EUR",
    sku: str = "watch-1",
) -> PaymentItem:
    return PaymentItem(sku, category, amount, currency, device)


def paid(
    order: str,
    payer: str,
    day: float,
    *items: PaymentItem,
    beneficiary: str | None = None,
    hour: float = 12,
) -> DomainEvent:
    return PaymentCompleted(eid(), at(day, hour), order, payer, items or (item(),), beneficiary)


def refunded(
    order: str, payer: str, day: float, amount: int = 10_000, currency: str = "EUR"
) -> DomainEvent:
    return PaymentRefunded(eid(), at(day), order, payer, amount, currency)


def cancelled(person: str, sku: str, day: float) -> DomainEvent:
    return SubscriptionCancelled(eid(), at(day), person, sku)


def referred(referrer: str, referee: str, day: float) -> DomainEvent:
    return ReferralCompleted(eid(), at(day), referrer, referee)


def consent(person: str, channel: str, granted: bool, day: float, hour: float = 12) -> DomainEvent:
    return PersonConsentChanged(eid(), at(day, hour), person, channel, granted)


def feedback(person: str, day: float, rating: int | None = 5) -> DomainEvent:
    return FeedbackSubmitted(eid(), at(day), person, "app", rating)


def linked(person: str, alias: str, day: float) -> DomainEvent:
    return IdentityLinked(eid(), at(day), person, alias)


def erasure(person: str, day: float) -> DomainEvent:
    return PersonErasureRequested(eid(), at(day), person)
