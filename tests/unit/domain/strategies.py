"""Hypothesis strategies: realistic small event sets over a few devices, persons, orders."""

from __future__ import annotations

from datetime import datetime, timedelta

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
    PersonErasureRequested,
    ReferralCompleted,
    SubscriptionCancelled,
)

from .scenario import T0

DEVICES = ("d1", "d2", "d3")
PERSONS = ("p1", "p2", "p3", "p4", "p5")
ORDERS = ("o1", "o2", "o3", "o4")
CURRENCIES = ("EUR", "USD")

times = st.integers(0, 24 * 120).map(lambda h: T0 + timedelta(hours=h))
persons = st.sampled_from(PERSONS)
devices = st.sampled_from(DEVICES)
event_ids = st.tuples(st.sampled_from(("shop", "fleet")), st.integers(0, 10_000).map(str))


def _items() -> st.SearchStrategy[tuple[PaymentItem, ...]]:
    one = st.builds(
        PaymentItem,
        sku=st.sampled_from(("watch-1", "care-plan", "band")),
        category=st.sampled_from(("hardware", "subscription", "service", "accessory")),
        amount_minor=st.integers(0, 50_000),
        currency=st.sampled_from(CURRENCIES),
        device_id=st.none() | devices,
    )
    return st.lists(one, min_size=1, max_size=3).map(tuple)


def _event(eid: EventId, at: datetime) -> st.SearchStrategy[DomainEvent]:
    maybe_person = st.none() | persons
    kinds: list[st.SearchStrategy[DomainEvent]] = [
        st.builds(DeviceActivated, st.just(eid), st.just(at), devices, persons, st.just("watch")),
        st.builds(DeviceUsed, st.just(eid), st.just(at), devices, maybe_person),
        st.builds(DeviceUsed, st.just(eid), st.just(at), devices, st.none()),
        st.builds(
            DeviceDeactivated, st.just(eid), st.just(at), devices, st.sampled_from(("reset", "resale"))
        ),
        st.builds(
            PaymentCompleted,
            st.just(eid),
            st.just(at),
            st.sampled_from(ORDERS),
            persons,
            _items(),
            maybe_person,
        ),
        st.builds(
            PaymentRefunded,
            st.just(eid),
            st.just(at),
            st.sampled_from(ORDERS),
            persons,
            st.integers(0, 60_000),
            st.sampled_from(CURRENCIES),
        ),
        st.builds(
            SubscriptionCancelled, st.just(eid), st.just(at), persons, st.just("care-plan")
        ),
        st.builds(ReferralCompleted, st.just(eid), st.just(at), persons, persons),
        st.builds(FeedbackSubmitted, st.just(eid), st.just(at), persons, st.just("app")),
        st.builds(IdentityLinked, st.just(eid), st.just(at), persons, persons),
    ]
    weighted = st.sampled_from(range(len(kinds) * 2 + 1)).flatmap(
        lambda i: kinds[i % len(kinds)]
        if i < len(kinds) * 2
        else st.builds(PersonErasureRequested, st.just(eid), st.just(at), persons)
    )
    return weighted


@st.composite
def event_sets(draw: st.DrawFn, max_size: int = 25, erasures: bool = True) -> list[DomainEvent]:
    """Distinct events (unique (source, id)); erasure is rarer than other kinds."""
    ids = draw(st.lists(event_ids, max_size=max_size, unique=True))
    found: list[DomainEvent] = []
    for eid in ids:
        event = draw(_event(eid, draw(times)))
        if erasures or not isinstance(event, PersonErasureRequested):
            found.append(event)
    return found


@st.composite
def shuffled_with_duplicates(draw: st.DrawFn, events: list[DomainEvent]) -> list[DomainEvent]:
    """A permutation of ``events`` with some of them delivered more than once."""
    again = draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    return draw(st.permutations(events + again))
