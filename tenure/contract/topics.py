"""Kafka topics of the Tenure event contract v1 and how each event type is routed.

The AsyncAPI document in ``schemas/asyncapi.yaml`` describes the same topics; a test keeps
the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICE_EVENTS = "tenure.device-events.v1"
"""Device telemetry, keyed by ``data.device_id``."""
PAYMENT_EVENTS = "tenure.payment-events.v1"
"""Payments and refunds, keyed by ``data.payer_id``."""
PERSON_EVENTS = "tenure.person-events.v1"
"""Everything about one person, keyed by ``data.person_id`` (referrals by ``referrer_id``)."""
SDK_EVENTS = "tenure.sdk-events.v1"
"""Unvalidated events written directly by producer-SDK clients; validated by a stream worker."""
DEAD_LETTERS = "tenure.deadletter.v1"
"""Events that could not be applied, with the reason in the ``tenure-reason`` header."""
LIFECYCLE_TRANSITIONS = "tenure.lifecycle.transitions.v1"
"""Per-person lifecycle transitions for downstream services (CRM, marketing, support)."""

PERSONS = "tenure.persons.v1"
"""Each person's current view keyed by the person's token (a null value: removed or erased);
compacted (docs/projection.md, "Following persons")."""

AUDIENCES = "tenure.audiences.v1"
"""Entries into and exits from audiences (and suppression changes of members), CloudEvents
keyed by the person's token (docs/audiences.md, "Live membership")."""

CANONICAL_TOPICS: tuple[str, ...] = (DEVICE_EVENTS, PAYMENT_EVENTS, PERSON_EVENTS)
"""Topics that only ever hold validated events."""
ALL_TOPICS: tuple[str, ...] = (
    *CANONICAL_TOPICS, SDK_EVENTS, DEAD_LETTERS, LIFECYCLE_TRANSITIONS, PERSONS, AUDIENCES,
)  # fmt: skip
COMPACTED_TOPICS: tuple[str, ...] = (PERSONS,)
"""Topics created with ``cleanup.policy=compact`` (the latest value per key is kept)."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where one event type goes: its topic and the ``data`` field whose value is the key."""

    topic: str
    key_field: str


ROUTES: dict[str, Route] = {
    "device.activated": Route(DEVICE_EVENTS, "device_id"),
    "device.used": Route(DEVICE_EVENTS, "device_id"),
    "device.deactivated": Route(DEVICE_EVENTS, "device_id"),
    "payment.completed": Route(PAYMENT_EVENTS, "payer_id"),
    "payment.refunded": Route(PAYMENT_EVENTS, "payer_id"),
    "subscription.cancelled": Route(PERSON_EVENTS, "person_id"),
    "referral.completed": Route(PERSON_EVENTS, "referrer_id"),
    "feedback.submitted": Route(PERSON_EVENTS, "person_id"),
    "identity.linked": Route(PERSON_EVENTS, "person_id"),
    "person.erasure_requested": Route(PERSON_EVENTS, "person_id"),
    "person.consent_changed": Route(PERSON_EVENTS, "person_id"),
}
"""Routing of every v1 event type: topic and key field."""

EVENT_TYPES: tuple[str, ...] = tuple(ROUTES)
"""Every event type of contract v1."""

INGEST_TIME_HEADER = "tenure-ingest-time"
"""Kafka header carrying the ingest time (RFC 3339, UTC) stamped by the ingest service."""
REASON_HEADER = "tenure-reason"
"""Kafka header carrying the reason a record was dead-lettered."""
