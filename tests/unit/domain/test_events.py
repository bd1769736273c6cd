from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.domain import (
    EVENT_TYPES,
    DeviceActivated,
    DeviceDeactivated,
    DeviceUsed,
    FeedbackSubmitted,
    IdentityLinked,
    PaymentCompleted,
    PaymentItem,
    PaymentRefunded,
    PersonConsentChanged,
    PersonErasureRequested,
    ReferralCompleted,
    SubscriptionCancelled,
    parse_event,
)
from tenure.domain.events import later, parse_time


def envelope(
    type_: str, data: dict[str, Any], time: str = "2024-03-01T10:00:00Z"
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/shop",
        "type": type_,
        "time": time,
        "data": data,
    }


AT = datetime(2024, 3, 1, 10, tzinfo=UTC)
EID = ("/shop", "evt-1")


@pytest.mark.parametrize(
    ("type_", "data", "expected"),
    [
        (
            "device.activated",
            {"device_id": "d1", "person_id": "p1", "product": "watch"},
            DeviceActivated(EID, AT, "d1", "p1", "watch"),
        ),
        ("device.used", {"device_id": "d1"}, DeviceUsed(EID, AT, "d1")),
        (
            "device.used",
            {"device_id": "d1", "person_id": "p1", "duration_s": 30, "feature": "gps"},
            DeviceUsed(EID, AT, "d1", "p1", 30.0, "gps"),
        ),
        (
            "device.deactivated",
            {"device_id": "d1", "reason": "resale"},
            DeviceDeactivated(EID, AT, "d1", "resale"),
        ),
        (
            "payment.completed",
            {
                "order_id": "o1",
                "payer_id": "p1",
                "beneficiary_id": "p2",
                "items": [
                    {
                        "sku": "w",
                        "category": "hardware",
                        "amount_minor": 100,
                        "currency": "EUR",
                        "device_id": "d1",
                    },
                    {"sku": "c", "category": "subscription", "amount_minor": 5, "currency": "EUR"},
                ],
            },
            PaymentCompleted(
                EID,
                AT,
                "o1",
                "p1",
                (
                    PaymentItem("w", "hardware", 100, "EUR", "d1"),
                    PaymentItem("c", "subscription", 5, "EUR"),
                ),
                "p2",
            ),
        ),
        (
            "payment.refunded",
            {"order_id": "o1", "payer_id": "p1", "amount_minor": 100, "currency": "EUR"},
            PaymentRefunded(EID, AT, "o1", "p1", 100, "EUR"),
        ),
        (
            "subscription.cancelled",
            {"person_id": "p1", "sku": "c"},
            SubscriptionCancelled(EID, AT, "p1", "c"),
        ),
        (
            "referral.completed",
            {"referrer_id": "p1", "referee_id": "p2"},
            ReferralCompleted(EID, AT, "p1", "p2"),
        ),
        (
            "feedback.submitted",
            {"person_id": "p1", "channel": "app", "rating": 4},
            FeedbackSubmitted(EID, AT, "p1", "app", 4),
        ),
        (
            "identity.linked",
            {"person_id": "p1", "alias_id": "a1"},
            IdentityLinked(EID, AT, "p1", "a1"),
        ),
        ("person.erasure_requested", {"person_id": "p1"}, PersonErasureRequested(EID, AT, "p1")),
        (
            "person.consent_changed",
            {"person_id": "p1", "channel": "sms", "granted": False},
            PersonConsentChanged(EID, AT, "p1", "sms", False),
        ),
    ],
)
def test_parse_event_builds_the_typed_event(
    type_: str, data: dict[str, Any], expected: object
) -> None:
    assert parse_event(envelope(type_, data)) == expected


def test_every_event_type_is_covered() -> None:
    assert len(EVENT_TYPES) == 11


def test_times_are_normalised_to_aware_utc() -> None:
    parsed = parse_time("2024-03-01T12:00:00.123456789+02:00")
    assert parsed == datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert parsed.tzinfo is UTC
    assert parse_time("2024-03-01t10:00:00z") == AT


@given(st.lists(st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))), min_size=1, max_size=6))
def test_later_is_the_latest_known_time(times: list[datetime | None]) -> None:
    known = [t for t in times if t is not None]
    folded: datetime | None = None
    for t in times:
        folded = later(folded, t)
    assert folded == (max(known) if known else None)
    assert later(times[0], None) == times[0] == later(None, times[0])


def test_time_without_offset_is_rejected() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_time("2024-03-01T10:00:00")


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        parse_event(envelope("device.exploded", {}))
