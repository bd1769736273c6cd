"""Per-person state (keyed by person_id): a join-semilattice of the person's own facts.

Orders, refunds, gifts, referrals, feedback and cancellations are maps keyed by their
natural id (order id, (order id, event id), referee id, event id, ...), joined key by key.
Device contributions are pushed in as ``(version, contribution)`` per (device, person id)
and the join keeps the higher version, so the device worker can re-derive and push a
contribution every time a device changes and the person state stays commutative.

Consent is a grow-only map of ``person.consent_changed`` facts keyed by event id; the
current consent per channel is read from it as of an instant, last writer wins by event
time (:func:`consent_as_of`), so it is an LWW register per channel that can also answer
for any earlier instant.

Erasure is a tombstone: an erased state keeps only its key and the erasure time, absorbs
every join and ignores every later event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from tenure.domain.contribution import DeviceContribution
from tenure.domain.device import DeviceVersion
from tenure.domain.events import (
    DomainEvent,
    EventId,
    FeedbackSubmitted,
    PaymentCompleted,
    PaymentItem,
    PaymentRefunded,
    PersonConsentChanged,
    PersonErasureRequested,
    ReferralCompleted,
    SubscriptionCancelled,
)
from tenure.domain.lattice import earliest, frozen_map, join_maps

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Order:
    """A completed order paid by this person."""

    order_id: str
    at: datetime
    event_id: EventId
    items: tuple[PaymentItem, ...]
    beneficiary_id: str | None = None

    def amounts(self) -> dict[str, int]:
        """Order total per currency, in minor units."""
        totals: dict[str, int] = {}
        for item in self.items:
            totals[item.currency] = totals.get(item.currency, 0) + item.amount_minor
        return totals


@dataclass(frozen=True, slots=True)
class Refund:
    """Money returned for (part of) an order."""

    order_id: str
    at: datetime
    event_id: EventId
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class GiftReceived:
    """Somebody else paid an order naming this person as beneficiary."""

    order_id: str
    at: datetime
    event_id: EventId
    payer_id: str


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A subscription (by sku) was cancelled."""

    at: datetime
    event_id: EventId
    sku: str


@dataclass(frozen=True, slots=True)
class VersionedContribution:
    """A device contribution stamped with the version of the device state it came from."""

    version: DeviceVersion
    contribution: DeviceContribution


@dataclass(frozen=True, slots=True)
class ConsentFact:
    """One ``person.consent_changed``: consent on ``channel`` granted or withdrawn at ``at``."""

    at: datetime
    channel: str
    granted: bool

    @property
    def precedence(self) -> tuple[datetime, bool]:
        """Later facts win; at equal times a withdrawal wins over a grant (do not disturb
        when in doubt). The event id breaks the remaining ties (see :func:`consent_as_of`)."""
        return (self.at, not self.granted)


ContributionKey = tuple[str, str]
"""(device_id, person id the contribution was derived for)."""


@dataclass(frozen=True, slots=True)
class PersonState:
    """Everything known about one person (or, once resolved, one human)."""

    person_id: str
    aliases: frozenset[str] = frozenset()
    """Other person ids merged into this one by identity links."""
    erased_at: datetime | None = None
    """Set once the person asked to be forgotten; the state is then a tombstone."""
    orders: Mapping[str, Order] = field(default_factory=frozen_map)
    refunds: Mapping[tuple[str, EventId], Refund] = field(default_factory=frozen_map)
    gifts_received: Mapping[str, GiftReceived] = field(default_factory=frozen_map)
    referrals_made: Mapping[str, datetime] = field(default_factory=frozen_map)
    """Referee id -> earliest referral time."""
    referred_by: Mapping[str, datetime] = field(default_factory=frozen_map)
    """Referrer id -> earliest referral time."""
    feedback: Mapping[EventId, datetime] = field(default_factory=frozen_map)
    cancellations: Mapping[EventId, Cancellation] = field(default_factory=frozen_map)
    device_contrib: Mapping[ContributionKey, VersionedContribution] = field(
        default_factory=frozen_map
    )
    consent: Mapping[EventId, ConsentFact] = field(default_factory=frozen_map)
    """``person.consent_changed`` facts by event id (read with :func:`consent_as_of`)."""

    @property
    def erased(self) -> bool:
        """Whether this state is an erasure tombstone."""
        return self.erased_at is not None

    @property
    def members(self) -> frozenset[str]:
        """All person ids that are this human (its own id and its aliases)."""
        return self.aliases | {self.person_id}

    @property
    def first_purchase_at(self) -> datetime | None:
        """Time of the first completed order (refunded or not)."""
        return min((o.at for o in self.orders.values()), default=None)

    @property
    def contributions(self) -> list[DeviceContribution]:
        """The latest known contribution of every device, in key order (do not mutate:
        deriving one view asks for it many times, so the last answer is kept)."""
        global _last_contributions
        last = _last_contributions
        if last[0] is self:
            return last[1]
        answer = [self.device_contrib[key].contribution for key in sorted(self.device_contrib)]
        _last_contributions = (self, answer)
        return answer


_last_contributions: tuple[PersonState | None, list[DeviceContribution]] = (None, [])


def consent_as_of(state: PersonState, as_of: datetime) -> dict[str, bool]:
    """Current consent per channel as of ``as_of``: for each channel with a fact at or before
    ``as_of``, the ``granted`` of the winning fact. Last writer wins by event time; at equal
    times a withdrawal beats a grant; then the larger event id ``(source, id)`` wins (only
    one event's payload can then be kept, whatever the delivery order). Channels nobody
    spoke of are absent (no consent known: treat as not granted)."""
    best: dict[str, tuple[tuple[datetime, bool], EventId, bool]] = {}
    for event_id, fact in state.consent.items():
        if fact.at > as_of:
            continue
        candidate = (fact.precedence, event_id, fact.granted)
        current = best.get(fact.channel)
        if current is None or candidate > current:
            best[fact.channel] = candidate
    return {channel: best[channel][2] for channel in sorted(best)}


def _earlier(left: T, right: T, key: Callable[[T], Any]) -> T:
    """The earlier of two facts by ``key``; a tie between different facts (one event id
    delivered with two payloads) goes to the smaller ``repr``, so the join commutes."""
    a, b = key(left), key(right)
    if a != b:
        return left if a < b else right
    if left == right:
        return left
    return left if repr(left) <= repr(right) else right


def _earlier_order(left: Order, right: Order) -> Order:
    return _earlier(left, right, lambda o: (o.at, o.event_id))


def _earlier_refund(left: Refund, right: Refund) -> Refund:
    return _earlier(left, right, lambda r: (r.at, r.event_id))


def _earlier_gift(left: GiftReceived, right: GiftReceived) -> GiftReceived:
    return _earlier(left, right, lambda g: (g.at, g.event_id))


def _earlier_cancellation(left: Cancellation, right: Cancellation) -> Cancellation:
    return _earlier(left, right, lambda c: (c.at, c.sku))


def _earlier_consent(left: ConsentFact, right: ConsentFact) -> ConsentFact:
    return _earlier(left, right, lambda c: (c.at, c.channel, c.granted))


def _newer_contribution(
    left: VersionedContribution, right: VersionedContribution
) -> VersionedContribution:
    return max(left, right, key=lambda v: (v.version, v.contribution.sort_key))


def erased_person(person_id: str, at: datetime) -> PersonState:
    """The tombstone of an erased person."""
    return PersonState(person_id, erased_at=at)


def join_persons(person_id: str, states: Iterable[PersonState]) -> PersonState:
    """Join any number of states of one person (the n-ary form of :func:`merge_person`)."""
    parts = list(states)
    if any(s.person_id != person_id for s in parts):
        raise ValueError("cannot merge states of different persons; rekey them first")
    erasures = [s.erased_at for s in parts if s.erased_at is not None]
    if erasures:
        return erased_person(person_id, min(erasures))
    return PersonState(
        person_id,
        aliases=frozenset().union(*(s.aliases for s in parts)) - {person_id},
        orders=join_maps((s.orders for s in parts), _earlier_order),
        refunds=join_maps((s.refunds for s in parts), _earlier_refund),
        gifts_received=join_maps((s.gifts_received for s in parts), _earlier_gift),
        referrals_made=join_maps((s.referrals_made for s in parts), earliest),
        referred_by=join_maps((s.referred_by for s in parts), earliest),
        feedback=join_maps((s.feedback for s in parts), earliest),
        cancellations=join_maps((s.cancellations for s in parts), _earlier_cancellation),
        device_contrib=join_maps((s.device_contrib for s in parts), _newer_contribution),
        consent=join_maps((s.consent for s in parts), _earlier_consent),
    )


def merge_person(left: PersonState, right: PersonState) -> PersonState:
    """Join two states of the same person id (idempotent, commutative, associative)."""
    return join_persons(left.person_id, (left, right))


def _payment_facts(person_id: str, event: PaymentCompleted) -> PersonState:
    orders: dict[str, Order] = {}
    gifts: dict[str, GiftReceived] = {}
    if event.payer_id == person_id:
        orders[event.order_id] = Order(
            event.order_id, event.at, event.event_id, event.items, event.beneficiary_id
        )
    if event.beneficiary_id == person_id and event.payer_id != person_id:
        gifts[event.order_id] = GiftReceived(
            event.order_id, event.at, event.event_id, event.payer_id
        )
    return PersonState(person_id, orders=frozen_map(orders), gifts_received=frozen_map(gifts))


def _referral_facts(person_id: str, event: ReferralCompleted) -> PersonState:
    made = {event.referee_id: event.at} if event.referrer_id == person_id else {}
    received = {event.referrer_id: event.at} if event.referee_id == person_id else {}
    return PersonState(person_id, referrals_made=frozen_map(made), referred_by=frozen_map(received))


def person_singleton(person_id: str, event: DomainEvent) -> PersonState:
    """The state holding only what ``event`` says about person ``person_id``."""
    match event:
        case PaymentCompleted():
            return _payment_facts(person_id, event)
        case PaymentRefunded() if event.payer_id == person_id:
            refund = Refund(
                event.order_id, event.at, event.event_id, event.amount_minor, event.currency
            )
            return PersonState(
                person_id, refunds=frozen_map({(event.order_id, event.event_id): refund})
            )
        case SubscriptionCancelled() if event.person_id == person_id:
            cancelled = Cancellation(event.at, event.event_id, event.sku)
            return PersonState(person_id, cancellations=frozen_map({event.event_id: cancelled}))
        case ReferralCompleted():
            return _referral_facts(person_id, event)
        case FeedbackSubmitted() if event.person_id == person_id:
            return PersonState(person_id, feedback=frozen_map({event.event_id: event.at}))
        case PersonErasureRequested() if event.person_id == person_id:
            return erased_person(person_id, event.at)
        case PersonConsentChanged() if event.person_id == person_id:
            fact = ConsentFact(event.at, event.channel, event.granted)
            return PersonState(person_id, consent=frozen_map({event.event_id: fact}))
        case _:
            return PersonState(person_id)


def apply_person(state: PersonState, event: DomainEvent) -> PersonState:
    """Apply one event: ``merge_person(state, person_singleton(state.person_id, event))``."""
    return merge_person(state, person_singleton(state.person_id, event))


def with_device_contribution(
    state: PersonState, version: DeviceVersion, contribution: DeviceContribution
) -> PersonState:
    """Merge in a device contribution derived from a device state of ``version``."""
    if contribution.person_id not in state.members:
        raise ValueError("contribution is for a different person")
    key: ContributionKey = (contribution.device_id, contribution.person_id)
    if state.erased_at is not None:
        return erased_person(state.person_id, state.erased_at)  # erasure absorbs every join
    if state.person_id not in state.aliases:  # a joined state: only the one map changes
        pushed_entry = VersionedContribution(version, contribution)
        current = state.device_contrib.get(key)
        chosen = pushed_entry if current is None else _newer_contribution(current, pushed_entry)
        if chosen is current:
            return state
        contributions = dict(state.device_contrib)
        contributions[key] = chosen
        return replace(state, device_contrib=MappingProxyType(contributions))
    pushed = PersonState(
        state.person_id,
        device_contrib=frozen_map({key: VersionedContribution(version, contribution)}),
    )
    return merge_person(state, pushed)


def rekey(state: PersonState, person_id: str) -> PersonState:
    """The same facts under another id of the same human (its old id becomes an alias)."""
    if state.person_id == person_id:
        return state
    if state.erased_at is not None:
        return erased_person(person_id, state.erased_at)
    aliases = (state.aliases | {state.person_id}) - {person_id}
    return PersonState(
        person_id,
        aliases,
        None,
        state.orders,
        state.refunds,
        state.gifts_received,
        state.referrals_made,
        state.referred_by,
        state.feedback,
        state.cancellations,
        state.device_contrib,
        state.consent,
    )


def person_ids_of(event: DomainEvent) -> frozenset[str]:
    """The person keys an event must be routed to (device events go to devices)."""
    match event:
        case PaymentCompleted():
            ids = {event.payer_id}
            if event.beneficiary_id is not None:
                ids.add(event.beneficiary_id)
            return frozenset(ids)
        case PaymentRefunded():
            return frozenset({event.payer_id})
        case (
            SubscriptionCancelled()
            | FeedbackSubmitted()
            | PersonErasureRequested()
            | PersonConsentChanged()
        ):
            return frozenset({event.person_id})
        case ReferralCompleted():
            return frozenset({event.referrer_id, event.referee_id})
        case _:
            return frozenset()
