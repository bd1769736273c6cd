"""Hypothesis strategies: realistic small event sets over a few devices, persons, orders."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tenure.domain import (
    DeviceActivated,
    DeviceDeactivated,
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
    ReferralCompleted,
    SubscriptionCancelled,
)
from tenure.domain.events import CONSENT_CHANNELS

from .scenario import T0

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Settings of the property tests over event sets (slow examples are fine)."""

DEVICES = ("d1", "d2", "d3")
PERSONS = ("p1", "p2", "p3", "p4", "p5")
ORDERS = ("o1", "o2", "o3", "o4")
CURRENCIES = ("EUR", "USD")

times = st.integers(0, 24 * 120).map(lambda h: T0 + timedelta(hours=h))
persons = st.sampled_from(PERSONS)
devices = st.sampled_from(DEVICES)
channels = st.sampled_from(CONSENT_CHANNELS)
event_ids = st.tuples(st.sampled_from(("shop", "fleet")), st.integers(0, 10_000).map(str))


KINDS = (
    "activated",
    "used",
    "used_anonymously",
    "deactivated",
    "paid",
    "refunded",
    "cancelled",
    "referred",
    "feedback",
    "linked",
    "consent",
)
"""Event kinds, each drawn equally often; an erasure is drawn half as often as one kind."""


def _items(draw: st.DrawFn) -> tuple[PaymentItem, ...]:
    count = draw(st.integers(1, 3))
    return tuple(
        PaymentItem(
            draw(st.sampled_from(("watch-1", "care-plan", "band"))),
            draw(st.sampled_from(("hardware", "subscription", "service", "accessory"))),
            draw(st.integers(0, 50_000)),
            draw(st.sampled_from(CURRENCIES)),
            draw(st.none() | devices),
        )
        for _ in range(count)
    )


def _event(draw: st.DrawFn, eid: EventId, at: datetime) -> DomainEvent:
    index = draw(st.integers(0, 2 * len(KINDS)))
    if index == 2 * len(KINDS):
        return PersonErasureRequested(eid, at, draw(persons))
    kind = KINDS[index % len(KINDS)]
    if kind == "activated":
        return DeviceActivated(eid, at, draw(devices), draw(persons), "watch")
    if kind == "used":
        return DeviceUsed(eid, at, draw(devices), draw(st.none() | persons))
    if kind == "used_anonymously":
        return DeviceUsed(eid, at, draw(devices))
    if kind == "deactivated":
        return DeviceDeactivated(eid, at, draw(devices), draw(st.sampled_from(("reset", "resale"))))
    if kind == "paid":
        order = draw(st.sampled_from(ORDERS))
        payer, items = draw(persons), _items(draw)
        return PaymentCompleted(eid, at, order, payer, items, draw(st.none() | persons))
    if kind == "refunded":
        amount = draw(st.integers(0, 60_000))
        order, payer = draw(st.sampled_from(ORDERS)), draw(persons)
        return PaymentRefunded(eid, at, order, payer, amount, draw(st.sampled_from(CURRENCIES)))
    if kind == "cancelled":
        return SubscriptionCancelled(eid, at, draw(persons), "care-plan")
    if kind == "referred":
        return ReferralCompleted(eid, at, draw(persons), draw(persons))
    if kind == "feedback":
        return FeedbackSubmitted(eid, at, draw(persons), "app")
    if kind == "consent":
        return PersonConsentChanged(eid, at, draw(persons), draw(channels), draw(st.booleans()))
    return IdentityLinked(eid, at, draw(persons), draw(persons))


@st.composite
def event_sets(draw: st.DrawFn, max_size: int = 20, erasures: bool = True) -> list[DomainEvent]:
    """Distinct events (unique (source, id)); erasure is rarer than other kinds."""
    ids = draw(st.lists(event_ids, max_size=max_size, unique=True))
    found: list[DomainEvent] = []
    for eid in ids:
        event = _event(draw, eid, draw(times))
        if erasures or not isinstance(event, PersonErasureRequested):
            found.append(event)
    return found


@st.composite
def shuffled_with_duplicates(draw: st.DrawFn, events: list[DomainEvent]) -> list[DomainEvent]:
    """A permutation of ``events`` with some of them delivered more than once."""
    again = draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    return draw(st.permutations(events + again))
