"""Domain events: the eleven CloudEvents types the lifecycle projections understand.

Every event carries ``event_id`` (the CloudEvents ``(source, id)`` pair, which is the
identity used for de-duplication) and ``at`` (the event time, timezone-aware UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

EventId = tuple[str, str]
"""The CloudEvents identity of an event: ``(source, id)``."""


@dataclass(frozen=True, slots=True)
class DeviceActivated:
    """A device was activated and bound to a person (its user)."""

    event_id: EventId
    at: datetime
    device_id: str
    person_id: str
    product: str


@dataclass(frozen=True, slots=True)
class DeviceUsed:
    """A device reported use, optionally naming the person who used it."""

    event_id: EventId
    at: datetime
    device_id: str
    person_id: str | None = None
    duration_s: float | None = None
    feature: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceDeactivated:
    """A device was unbound from its user (reason: reset, resale, returned or other)."""

    event_id: EventId
    at: datetime
    device_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PaymentItem:
    """One line of an order: category is hardware, subscription, service or accessory."""

    sku: str
    category: str
    amount_minor: int
    currency: str
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentCompleted:
    """A payer completed an order, possibly for somebody else (the beneficiary)."""

    event_id: EventId
    at: datetime
    order_id: str
    payer_id: str
    items: tuple[PaymentItem, ...]
    beneficiary_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRefunded:
    """(Part of) an order was refunded to its payer."""

    event_id: EventId
    at: datetime
    order_id: str
    payer_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class SubscriptionCancelled:
    """A person cancelled a subscription (identified by its sku)."""

    event_id: EventId
    at: datetime
    person_id: str
    sku: str


@dataclass(frozen=True, slots=True)
class ReferralCompleted:
    """A referrer brought in a referee."""

    event_id: EventId
    at: datetime
    referrer_id: str
    referee_id: str


@dataclass(frozen=True, slots=True)
class FeedbackSubmitted:
    """A person talked back through some channel, optionally with a rating."""

    event_id: EventId
    at: datetime
    person_id: str
    channel: str
    rating: int | None = None


@dataclass(frozen=True, slots=True)
class IdentityLinked:
    """Two person ids (alias and person) belong to one human."""

    event_id: EventId
    at: datetime
    person_id: str
    alias_id: str


@dataclass(frozen=True, slots=True)
class PersonErasureRequested:
    """A person asked to be forgotten."""

    event_id: EventId
    at: datetime
    person_id: str


@dataclass(frozen=True, slots=True)
class PersonConsentChanged:
    """A person granted (``granted``) or withdrew consent to be contacted on a channel."""

    event_id: EventId
    at: datetime
    person_id: str
    channel: str
    granted: bool


CONSENT_CHANNELS: tuple[str, ...] = ("email", "push", "sms", "in_app")
"""The channels ``person.consent_changed`` speaks of (the schema's enum, in its order)."""


DomainEvent = (
    DeviceActivated
    | DeviceUsed
    | DeviceDeactivated
    | PaymentCompleted
    | PaymentRefunded
    | SubscriptionCancelled
    | ReferralCompleted
    | FeedbackSubmitted
    | IdentityLinked
    | PersonErasureRequested
    | PersonConsentChanged
)
"""Any event the lifecycle projections understand."""


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    Fractions finer than microseconds are truncated. A timestamp without an offset is
    rejected, because event time must be unambiguous.
    """
    try:  # the common case, "...Z" as producers write it: no copies, no conversion
        quick = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        if quick.tzinfo is UTC:
            return quick
    parsed = datetime.fromisoformat(value.strip().upper())
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return parsed.astimezone(UTC)


@overload
def later(first: datetime | None, second: datetime) -> datetime: ...
@overload
def later(first: datetime, second: datetime | None) -> datetime: ...
@overload
def later(first: datetime | None, second: datetime | None) -> datetime | None: ...
def later(first: datetime | None, second: datetime | None) -> datetime | None:
    """The later of two optional event times (``None``: no time known)."""
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _item(raw: Mapping[str, Any]) -> PaymentItem:
    return PaymentItem(
        sku=str(raw["sku"]),
        category=str(raw["category"]),
        amount_minor=int(raw["amount_minor"]),
        currency=str(raw["currency"]),
        device_id=_optional_str(raw, "device_id"),
    )


def _device_activated(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return DeviceActivated(eid, at, str(d["device_id"]), str(d["person_id"]), str(d["product"]))


def _device_used(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    duration = d.get("duration_s")
    return DeviceUsed(
        eid,
        at,
        str(d["device_id"]),
        _optional_str(d, "person_id"),
        None if duration is None else float(duration),
        _optional_str(d, "feature"),
    )


def _device_deactivated(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return DeviceDeactivated(eid, at, str(d["device_id"]), str(d["reason"]))


def _payment_completed(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return PaymentCompleted(
        eid,
        at,
        str(d["order_id"]),
        str(d["payer_id"]),
        tuple(_item(item) for item in d["items"]),
        _optional_str(d, "beneficiary_id"),
    )


def _payment_refunded(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return PaymentRefunded(
        eid, at, str(d["order_id"]), str(d["payer_id"]), int(d["amount_minor"]), str(d["currency"])
    )


def _subscription_cancelled(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return SubscriptionCancelled(eid, at, str(d["person_id"]), str(d["sku"]))


def _referral_completed(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return ReferralCompleted(eid, at, str(d["referrer_id"]), str(d["referee_id"]))


def _feedback_submitted(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    rating = d.get("rating")
    return FeedbackSubmitted(
        eid, at, str(d["person_id"]), str(d["channel"]), None if rating is None else int(rating)
    )


def _identity_linked(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return IdentityLinked(eid, at, str(d["person_id"]), str(d["alias_id"]))


def _erasure_requested(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return PersonErasureRequested(eid, at, str(d["person_id"]))


def _consent_changed(eid: EventId, at: datetime, d: Mapping[str, Any]) -> DomainEvent:
    return PersonConsentChanged(
        eid, at, str(d["person_id"]), str(d["channel"]), d["granted"] is True
    )


_PARSERS: Mapping[str, Callable[[EventId, datetime, Mapping[str, Any]], DomainEvent]] = {
    "device.activated": _device_activated,
    "device.used": _device_used,
    "device.deactivated": _device_deactivated,
    "payment.completed": _payment_completed,
    "payment.refunded": _payment_refunded,
    "subscription.cancelled": _subscription_cancelled,
    "referral.completed": _referral_completed,
    "feedback.submitted": _feedback_submitted,
    "identity.linked": _identity_linked,
    "person.erasure_requested": _erasure_requested,
    "person.consent_changed": _consent_changed,
}

EVENT_TYPES: frozenset[str] = frozenset(_PARSERS)
"""The CloudEvents ``type`` values :func:`parse_event` understands."""


def parse_event(envelope: Mapping[str, Any]) -> DomainEvent:
    """Turn a schema-valid CloudEvents 1.0 envelope into a domain event.

    Raises ``ValueError`` for an unknown ``type`` or a timestamp without an offset.
    """
    event_type = str(envelope["type"])
    parser = _PARSERS.get(event_type)
    if parser is None:
        raise ValueError(f"unknown event type: {event_type!r}")
    event_id: EventId = (str(envelope["source"]), str(envelope["id"]))
    return parser(event_id, parse_time(str(envelope["time"])), envelope.get("data") or {})
