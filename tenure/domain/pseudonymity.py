"""Person ids and their tokens: which fields hold person ids, and renaming them.

Outside the projection a person id travels as a *token* (``~p:`` followed by a keyed hash,
made by :mod:`tenure.privacy.pseudonyms`; docs/design/erasure.md). The projection resolves
tokens to ids while a person is known and keeps an erased person's token as their id. This
module is the pure part: the vocabulary, and renaming ids in events and raw states.

Renaming is a homomorphism of the fold: for an injective ``mapping``, folding renamed
events gives the renamed fold (property-tested), so the live projection renamed by an
erasure equals the fold of the archive as it decodes after the erasure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from tenure.domain.contribution import DeviceContribution
from tenure.domain.device import Activation, DevicePurchase, DeviceState, UseKey
from tenure.domain.erasure import tombstone_of
from tenure.domain.events import (
    DeviceActivated,
    DeviceUsed,
    DomainEvent,
    FeedbackSubmitted,
    IdentityLinked,
    PaymentCompleted,
    PaymentRefunded,
    PersonConsentChanged,
    PersonErasureRequested,
    ReferralCompleted,
    SubscriptionCancelled,
)
from tenure.domain.lattice import DaySpan, frozen_map, join_maps, join_spans
from tenure.domain.person import ContributionKey, GiftReceived, Order, PersonState

TOKEN_PREFIX = "~p:"
"""Every token starts with this (ids a producer sends are tokenised, so never collide)."""

PERSON_FIELDS: tuple[str, ...] = (
    "person_id",
    "payer_id",
    "beneficiary_id",
    "referrer_id",
    "referee_id",
    "alias_id",
)
"""The ``data`` fields of contract v1 events that hold person ids (any event type)."""

_EVENT_FIELDS: dict[type, tuple[str, ...]] = {
    DeviceActivated: ("person_id",),
    DeviceUsed: ("person_id",),
    PaymentCompleted: ("payer_id", "beneficiary_id"),
    PaymentRefunded: ("payer_id",),
    SubscriptionCancelled: ("person_id",),
    ReferralCompleted: ("referrer_id", "referee_id"),
    FeedbackSubmitted: ("person_id",),
    IdentityLinked: ("person_id", "alias_id"),
    PersonErasureRequested: ("person_id",),
    PersonConsentChanged: ("person_id",),
}


def is_token(value: str) -> bool:
    """Whether ``value`` is a token rather than a person id."""
    return value.startswith(TOKEN_PREFIX)


def person_ids_named(event: DomainEvent) -> list[str]:
    """The person ids (or tokens) ``event`` names, in field order (``None`` left out)."""
    fields = _EVENT_FIELDS.get(type(event), ())
    return [v for v in (getattr(event, f) for f in fields) if v is not None]


def rename_event(event: DomainEvent, mapping: Mapping[str, str]) -> DomainEvent:
    """``event`` with every person id in ``mapping`` replaced (the same object if none is)."""
    changes: dict[str, Any] = {}
    for name in _EVENT_FIELDS.get(type(event), ()):
        value = getattr(event, name)
        if value is not None and value in mapping:
            changes[name] = mapping[value]
    return replace(event, **changes) if changes else event


def rename_events(events: Iterable[DomainEvent], mapping: Mapping[str, str]) -> list[DomainEvent]:
    """:func:`rename_event` of each event."""
    if not mapping:
        return list(events)
    return [rename_event(e, mapping) for e in events]


def _renamed(value: str | None, mapping: Mapping[str, str]) -> str | None:
    return None if value is None else mapping.get(value, value)


def rename_device_state(state: DeviceState, mapping: Mapping[str, str]) -> DeviceState:
    """The device state with every person id in ``mapping`` replaced (tombstones too)."""
    if not mapping:
        return state
    activations = frozenset(
        Activation(a.at, a.event_id, mapping.get(a.person_id, a.person_id), a.product)
        for a in state.activations
    )
    purchases = frozenset(
        DevicePurchase(
            p.at,
            p.order_id,
            p.event_id,
            mapping.get(p.payer_id, p.payer_id),
            _renamed(p.beneficiary_id, mapping),
        )
        for p in state.purchases
    )
    uses: Mapping[UseKey, DaySpan] = join_maps(
        ({(day, _renamed(person, mapping)): span} for (day, person), span in state.uses.items()),
        join_spans,
    )
    digests = {tombstone_of(old): tombstone_of(new) for old, new in mapping.items()}
    tombstones = frozenset(digests.get(t, t) for t in state.tombstones)
    return DeviceState(
        state.device_id, activations, state.deactivations, purchases, uses, tombstones
    )


def _rename_contribution(c: DeviceContribution, mapping: Mapping[str, str]) -> DeviceContribution:
    return replace(
        c,
        person_id=mapping.get(c.person_id, c.person_id),
        payer_id=_renamed(c.payer_id, mapping),
        beneficiary_id=_renamed(c.beneficiary_id, mapping),
        device_users=frozen_map({mapping.get(u, u): at for u, at in c.device_users.items()}),
    )


def rename_person_state(state: PersonState, mapping: Mapping[str, str]) -> PersonState:
    """The person state with every person id in ``mapping`` replaced (its key too)."""
    if not mapping:
        return state
    key = mapping.get(state.person_id, state.person_id)
    if state.erased_at is not None:
        return PersonState(key, erased_at=state.erased_at)
    orders = {
        k: Order(o.order_id, o.at, o.event_id, o.items, _renamed(o.beneficiary_id, mapping))
        for k, o in state.orders.items()
    }
    gifts = {
        k: GiftReceived(g.order_id, g.at, g.event_id, mapping.get(g.payer_id, g.payer_id))
        for k, g in state.gifts_received.items()
    }
    contributions = {}
    for (device_id, person_id), versioned in state.device_contrib.items():
        ckey: ContributionKey = (device_id, mapping.get(person_id, person_id))
        contributions[ckey] = replace(
            versioned, contribution=_rename_contribution(versioned.contribution, mapping)
        )
    return replace(
        state,
        person_id=key,
        aliases=frozenset(mapping.get(a, a) for a in state.aliases) - {key},
        orders=frozen_map(orders),
        gifts_received=frozen_map(gifts),
        referrals_made=frozen_map({mapping.get(p, p): t for p, t in state.referrals_made.items()}),
        referred_by=frozen_map({mapping.get(p, p): t for p, t in state.referred_by.items()}),
        device_contrib=frozen_map(contributions),
    )


def person_ids_in_state(state: PersonState) -> frozenset[str]:
    """Other person ids a person state names (beneficiaries, gift payers, referrals)."""
    ids: set[str] = set(state.referrals_made) | set(state.referred_by)
    ids.update(o.beneficiary_id for o in state.orders.values() if o.beneficiary_id is not None)
    ids.update(g.payer_id for g in state.gifts_received.values())
    ids.discard(state.person_id)
    return frozenset(ids)
