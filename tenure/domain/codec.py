"""Stable, versioned JSON form of the semilattice states (schema version 1).

The streaming projector and the batch replay persist per-device and per-person states
(Postgres ``jsonb``, Kafka changelogs). This module turns :class:`DeviceState`,
:class:`PersonState` and :class:`IdentityGraph` into plain JSON documents and back:

- ``*_to_json`` / ``*_from_json``: documents made only of ``dict``, ``list``, ``str``,
  ``int``, ``bool`` and ``None`` (ready for ``psycopg``'s ``Jsonb``);
- ``encode_*`` / ``decode_*``: the same documents as compact UTF-8 bytes (orjson).

Format rules (see ``docs/lifecycle.md``, "Serialised state"):

- every document has ``"v": 1`` (schema version) and ``"kind"`` (``device``, ``person``
  or ``identity``); any other version is rejected with a ``ValueError``;
- every field is written, ``None`` as ``null`` and empty collections as ``[]``/``{}``, and
  a decoder accepts exactly these keys (a changed shape needs a new version). The one
  additive exception: a person's ``consent`` (added with ``person.consent_changed``) is
  written only when it holds facts, so the bytes of every state without consent are those
  written before it existed, and a document without it reads as no consent;
- datetimes are RFC 3339 UTC with microseconds (``2024-01-01T12:00:00.000000Z``; any
  offset is accepted on input and converted to UTC, a naive time is rejected); dates are
  ISO dates; tuples (event ids, versions, order items) are lists in their own order;
- sets are sorted lists; maps keyed by strings or dates are JSON objects; maps with
  composite keys are sorted lists of ``[key, value]`` pairs.

The encoding is canonical: equal states give identical bytes, so encoded states can be
compared and hashed, and ``encode(decode(b)) == b``. Object keys are sorted; sets of
strings and identity links are sorted by code point; sets of records and composite-key
entries are sorted by the bytes of their canonical encoding (compact JSON, sorted keys).

How much a state knows: :func:`person_state_size` for a person state, and
:attr:`DeviceState.version` for a device state (``(tombstones, facts, total span
length)``, compared lexicographically; it never decreases under merge and strictly
increases whenever the state grows). The plain fact count of a device is *not* monotone:
adding a tombstone can collapse facts that then name the same erased marker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar

import orjson

from tenure.domain.contribution import DeviceContribution
from tenure.domain.device import (
    Activation,
    Deactivation,
    DevicePurchase,
    DeviceState,
    DeviceVersion,
    UseKey,
)
from tenure.domain.events import EventId, PaymentItem
from tenure.domain.identity import IdentityGraph, Link
from tenure.domain.lattice import DaySpan, frozen_map
from tenure.domain.person import (
    Cancellation,
    ConsentFact,
    ContributionKey,
    GiftReceived,
    Order,
    PersonState,
    Refund,
    VersionedContribution,
)
from tenure.errors import TenureError

SCHEMA_VERSION: Final = 1
"""The schema version written in (and required of) every document as ``"v"``."""

ERASED_PERSON_SIZE: Final = 1 << 40
""":func:`person_state_size` of an erasure tombstone (the top of the person lattice).

Larger than the fact count of any real state, and small enough that sums over millions of
states still fit a Postgres ``bigint``.
"""

_DUMPS_OPTIONS: Final = orjson.OPT_SORT_KEYS

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

Json = Any
"""A JSON value as produced by the standard decoders (dict, list, str, int, bool, None)."""


# --------------------------------------------------------------------------- size


def person_state_size(state: PersonState) -> int:
    """How much a person state knows: a monotone measure, non-decreasing under merge.

    For a live state it is the number of facts: aliases, orders, refunds, gifts received,
    referrals made and received, feedback events, cancellations, device contributions
    (one per (device, person id) key) and consent changes. Every merge is a key-wise
    union, so the count of the merge is at least the count of either side. An erasure
    tombstone absorbs every merge and drops the facts, so it is ranked above every live
    state: :data:`ERASED_PERSON_SIZE`.

    The measure is not strictly monotone: a merge that only replaces a value under an
    existing key (an earlier order time, a newer device contribution) keeps the size.
    """
    if state.erased_at is not None:
        return ERASED_PERSON_SIZE
    return (
        len(state.aliases - {state.person_id})
        + len(state.orders)
        + len(state.refunds)
        + len(state.gifts_received)
        + len(state.referrals_made)
        + len(state.referred_by)
        + len(state.feedback)
        + len(state.cancellations)
        + len(state.device_contrib)
        + len(state.consent)
    )


# --------------------------------------------------------------------------- scalars


def _time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2024-01-02T12:00:00.000250Z``."""
    if moment.tzinfo is not UTC or type(moment) is not datetime:
        if moment.utcoffset() is None:
            raise ValueError(f"cannot encode a naive datetime: {moment!r}")
        utc = moment.astimezone(UTC)
        return utc.isoformat(timespec="microseconds")[:-6] + "Z"
    # orjson writes the same text several times faster than ``isoformat``, but leaves the
    # fraction out when it is zero.
    text = orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode()
    return text if moment.microsecond else text[:-1] + ".000000Z"


def _opt_time(moment: datetime | None) -> str | None:
    return None if moment is None else _time(moment)


def _canonical(value: Json) -> bytes:
    """Canonical bytes of a JSON value: the sort key of set elements and map keys."""
    return orjson.dumps(value, option=_DUMPS_OPTIONS)


def _sorted_list(values: Iterable[T], encode: Callable[[T], Json]) -> list[Json]:
    return sorted((encode(v) for v in values), key=_canonical)


def _entries(
    entries: Mapping[K, V], key: Callable[[K], Json], value: Callable[[V], Json]
) -> list[Json]:
    pairs = [(key(k), v) for k, v in entries.items()]
    pairs.sort(key=lambda pair: _canonical(pair[0]))
    return [[k, value(v)] for k, v in pairs]


def _event_id(event_id: EventId) -> list[str]:
    return [event_id[0], event_id[1]]


def _span(span: DaySpan) -> list[str]:
    return [_time(span.first_at), _time(span.last_at)]


class _Malformed(TenureError, ValueError):
    """A document does not have the shape of schema version 1."""


def _fail(where: str, expected: str, got: Json) -> _Malformed:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return _Malformed(f"{where}: expected {expected}, got {shown}")


def _str(value: Json, where: str) -> str:
    if type(value) is not str:
        raise _fail(where, "a string", value)
    return value


def _opt_str(value: Json, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: Json, where: str) -> int:
    if type(value) is not int:
        raise _fail(where, "an integer", value)
    return value


def _bool(value: Json, where: str) -> bool:
    if type(value) is not bool:
        raise _fail(where, "a boolean", value)
    return value


def _list(value: Json, where: str, length: int | None = None) -> list[Json]:
    if type(value) is not list or (length is not None and len(value) != length):
        raise _fail(where, "a list" if length is None else f"a list of {length}", value)
    return value


def _object(value: Json, where: str, keys: frozenset[str] | None = None) -> Mapping[str, Json]:
    if not isinstance(value, Mapping):
        raise _fail(where, "an object", value)
    if keys is not None and value.keys() != keys:
        missing = sorted(keys - value.keys())
        extra = sorted(value.keys() - keys)
        raise _Malformed(f"{where}: missing keys {missing}, unexpected keys {extra}")
    return value


def _parse_time(value: Json, where: str) -> datetime:
    text = _str(value, where)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(where, "an RFC 3339 time", value) from None
    if parsed.tzinfo is UTC:  # what the encoder writes ("Z")
        return parsed
    if parsed.utcoffset() is None:
        raise _fail(where, "an RFC 3339 time with an offset", value)
    return parsed.astimezone(UTC)


def _parse_opt_time(value: Json, where: str) -> datetime | None:
    return None if value is None else _parse_time(value, where)


def _parse_date(value: Json, where: str) -> date:
    text = _str(value, where)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(where, "an ISO date", value) from None


def _parse_event_id(value: Json, where: str) -> EventId:
    source, ident = _list(value, where, 2)
    return (_str(source, where), _str(ident, where))


def _parse_span(value: Json, where: str) -> DaySpan:
    first, last = _list(value, where, 2)
    return DaySpan(_parse_time(first, where), _parse_time(last, where))


def _parse_str_set(value: Json, where: str) -> frozenset[str]:
    return frozenset(_str(item, where) for item in _list(value, where))


def _check_header(data: Mapping[str, Any], kind: str) -> None:
    if not isinstance(data, Mapping):
        raise _fail(f"{kind} state", "a JSON object", data)
    version = data.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ValueError(
            f"unsupported {kind} state schema version {version!r} "
            f"(this build reads version {SCHEMA_VERSION} only)"
        )
    if data.get("kind") != kind:
        raise ValueError(f"not a {kind} state document (kind is {data.get('kind')!r})")


# --------------------------------------------------------------------------- device

_ACTIVATION_KEYS: Final = frozenset({"at", "event_id", "person_id", "product"})
_DEACTIVATION_KEYS: Final = frozenset({"at", "event_id", "reason"})
_PURCHASE_KEYS: Final = frozenset({"at", "order_id", "event_id", "payer_id", "beneficiary_id"})
_DEVICE_KEYS: Final = frozenset(
    {"v", "kind", "device_id", "activations", "deactivations", "purchases", "uses", "tombstones"}
)


def _activation(a: Activation) -> Json:
    return {
        "at": _time(a.at),
        "event_id": _event_id(a.event_id),
        "person_id": a.person_id,
        "product": a.product,
    }


def _deactivation(d: Deactivation) -> Json:
    return {"at": _time(d.at), "event_id": _event_id(d.event_id), "reason": d.reason}


def _purchase(p: DevicePurchase) -> Json:
    return {
        "at": _time(p.at),
        "order_id": p.order_id,
        "event_id": _event_id(p.event_id),
        "payer_id": p.payer_id,
        "beneficiary_id": p.beneficiary_id,
    }


def _use_key(key: UseKey) -> Json:
    return [key[0].isoformat(), key[1]]


def device_state_to_json(state: DeviceState) -> dict[str, Any]:
    """The schema-v1 JSON document of a device state (canonical; see the module doc).

    ``uses`` is a sorted list of ``[[day, person_id or null], [first_at, last_at]]``.
    """
    return {
        "v": SCHEMA_VERSION,
        "kind": "device",
        "device_id": state.device_id,
        "activations": _sorted_list(state.activations, _activation),
        "deactivations": _sorted_list(state.deactivations, _deactivation),
        "purchases": _sorted_list(state.purchases, _purchase),
        "uses": _entries(state.uses, _use_key, _span),
        "tombstones": sorted(state.tombstones),
    }


def _parse_activation(value: Json) -> Activation:
    where = "device.activations[]"
    raw = _object(value, where, _ACTIVATION_KEYS)
    return Activation(
        _parse_time(raw["at"], where),
        _parse_event_id(raw["event_id"], where),
        _str(raw["person_id"], where),
        _str(raw["product"], where),
    )


def _parse_deactivation(value: Json) -> Deactivation:
    where = "device.deactivations[]"
    raw = _object(value, where, _DEACTIVATION_KEYS)
    return Deactivation(
        _parse_time(raw["at"], where),
        _parse_event_id(raw["event_id"], where),
        _str(raw["reason"], where),
    )


def _parse_purchase(value: Json) -> DevicePurchase:
    where = "device.purchases[]"
    raw = _object(value, where, _PURCHASE_KEYS)
    return DevicePurchase(
        _parse_time(raw["at"], where),
        _str(raw["order_id"], where),
        _parse_event_id(raw["event_id"], where),
        _str(raw["payer_id"], where),
        _opt_str(raw["beneficiary_id"], where),
    )


def _parse_use(value: Json) -> tuple[UseKey, DaySpan]:
    where = "device.uses[]"
    key, span = _list(value, where, 2)
    day, person = _list(key, where, 2)
    return (_parse_date(day, where), _opt_str(person, where)), _parse_span(span, where)


def device_state_from_json(data: Mapping[str, Any]) -> DeviceState:
    """The device state of a schema-v1 document.

    Raises ``ValueError`` for another schema version, another kind of document or a
    malformed one.
    """
    _check_header(data, "device")
    raw = _object(data, "device", _DEVICE_KEYS)
    return DeviceState(
        device_id=_str(raw["device_id"], "device.device_id"),
        activations=frozenset(
            _parse_activation(a) for a in _list(raw["activations"], "device.activations")
        ),
        deactivations=frozenset(
            _parse_deactivation(d) for d in _list(raw["deactivations"], "device.deactivations")
        ),
        purchases=frozenset(
            _parse_purchase(p) for p in _list(raw["purchases"], "device.purchases")
        ),
        uses=frozen_map(dict(_parse_use(u) for u in _list(raw["uses"], "device.uses"))),
        tombstones=_parse_str_set(raw["tombstones"], "device.tombstones"),
    )


# --------------------------------------------------------------------------- person

_ITEM_KEYS: Final = frozenset({"sku", "category", "amount_minor", "currency", "device_id"})
_ORDER_KEYS: Final = frozenset({"order_id", "at", "event_id", "items", "beneficiary_id"})
_REFUND_KEYS: Final = frozenset({"order_id", "at", "event_id", "amount_minor", "currency"})
_GIFT_KEYS: Final = frozenset({"order_id", "at", "event_id", "payer_id"})
_CANCELLATION_KEYS: Final = frozenset({"at", "event_id", "sku"})
_CONSENT_KEYS: Final = frozenset({"at", "channel", "granted"})
_VERSIONED_KEYS: Final = frozenset({"version", "contribution"})
_CONTRIBUTION_KEYS: Final = frozenset(
    {
        "device_id",
        "person_id",
        "days",
        "activations",
        "is_current_user",
        "product",
        "payer_id",
        "paid_at",
        "beneficiary_id",
        "device_users",
    }
)
_PERSON_KEYS: Final = frozenset(
    {
        "v",
        "kind",
        "person_id",
        "aliases",
        "erased_at",
        "orders",
        "refunds",
        "gifts_received",
        "referrals_made",
        "referred_by",
        "feedback",
        "cancellations",
        "device_contrib",
    }
)
_PERSON_KEYS_WITH_CONSENT: Final = _PERSON_KEYS | {"consent"}


def _item(item: PaymentItem) -> Json:
    return {
        "sku": item.sku,
        "category": item.category,
        "amount_minor": item.amount_minor,
        "currency": item.currency,
        "device_id": item.device_id,
    }


def _order(order: Order) -> Json:
    return {
        "order_id": order.order_id,
        "at": _time(order.at),
        "event_id": _event_id(order.event_id),
        "items": [_item(i) for i in order.items],
        "beneficiary_id": order.beneficiary_id,
    }


def _refund(refund: Refund) -> Json:
    return {
        "order_id": refund.order_id,
        "at": _time(refund.at),
        "event_id": _event_id(refund.event_id),
        "amount_minor": refund.amount_minor,
        "currency": refund.currency,
    }


def _gift(gift: GiftReceived) -> Json:
    return {
        "order_id": gift.order_id,
        "at": _time(gift.at),
        "event_id": _event_id(gift.event_id),
        "payer_id": gift.payer_id,
    }


def _cancellation(cancellation: Cancellation) -> Json:
    return {
        "at": _time(cancellation.at),
        "event_id": _event_id(cancellation.event_id),
        "sku": cancellation.sku,
    }


def _consent(fact: ConsentFact) -> Json:
    return {"at": _time(fact.at), "channel": fact.channel, "granted": fact.granted}


def _contribution(c: DeviceContribution) -> Json:
    return {
        "device_id": c.device_id,
        "person_id": c.person_id,
        "days": {day.isoformat(): _span(span) for day, span in c.days.items()},
        "activations": sorted(_time(a) for a in c.activations),
        "is_current_user": c.is_current_user,
        "product": c.product,
        "payer_id": c.payer_id,
        "paid_at": _opt_time(c.paid_at),
        "beneficiary_id": c.beneficiary_id,
        "device_users": {person: _time(at) for person, at in c.device_users.items()},
    }


def _versioned(versioned: VersionedContribution) -> Json:
    return {
        "version": list(versioned.version),
        "contribution": _contribution(versioned.contribution),
    }


def _refund_key(key: tuple[str, EventId]) -> Json:
    return [key[0], _event_id(key[1])]


def _contribution_key(key: ContributionKey) -> Json:
    return [key[0], key[1]]


def person_state_to_json(state: PersonState) -> dict[str, Any]:
    """The schema-v1 JSON document of a person state (canonical; see the module doc).

    Maps keyed by an id (``orders``, ``gifts_received``, ``referrals_made``,
    ``referred_by``) are objects; ``refunds`` (key ``[order_id, event_id]``), ``feedback``
    and ``cancellations`` (key ``event_id``) and ``device_contrib`` (key ``[device_id,
    person_id]``) are sorted lists of ``[key, value]`` pairs; so is ``consent`` (key
    ``event_id``), written only when the person has consent facts.
    """
    document: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "kind": "person",
        "person_id": state.person_id,
        "aliases": sorted(state.aliases),
        "erased_at": _opt_time(state.erased_at),
        "orders": {k: _order(o) for k, o in state.orders.items()},
        "refunds": _entries(state.refunds, _refund_key, _refund),
        "gifts_received": {k: _gift(g) for k, g in state.gifts_received.items()},
        "referrals_made": {k: _time(at) for k, at in state.referrals_made.items()},
        "referred_by": {k: _time(at) for k, at in state.referred_by.items()},
        "feedback": _entries(state.feedback, _event_id, _time),
        "cancellations": _entries(state.cancellations, _event_id, _cancellation),
        "device_contrib": _entries(state.device_contrib, _contribution_key, _versioned),
    }
    if state.consent:
        document["consent"] = _entries(state.consent, _event_id, _consent)
    return document


def _parse_item(value: Json) -> PaymentItem:
    where = "person.orders.items[]"
    raw = _object(value, where, _ITEM_KEYS)
    return PaymentItem(
        _str(raw["sku"], where),
        _str(raw["category"], where),
        _int(raw["amount_minor"], where),
        _str(raw["currency"], where),
        _opt_str(raw["device_id"], where),
    )


def _parse_order(value: Json) -> Order:
    where = "person.orders{}"
    raw = _object(value, where, _ORDER_KEYS)
    return Order(
        _str(raw["order_id"], where),
        _parse_time(raw["at"], where),
        _parse_event_id(raw["event_id"], where),
        tuple(_parse_item(i) for i in _list(raw["items"], where)),
        _opt_str(raw["beneficiary_id"], where),
    )


def _parse_refund(value: Json) -> Refund:
    where = "person.refunds[]"
    raw = _object(value, where, _REFUND_KEYS)
    return Refund(
        _str(raw["order_id"], where),
        _parse_time(raw["at"], where),
        _parse_event_id(raw["event_id"], where),
        _int(raw["amount_minor"], where),
        _str(raw["currency"], where),
    )


def _parse_gift(value: Json) -> GiftReceived:
    where = "person.gifts_received{}"
    raw = _object(value, where, _GIFT_KEYS)
    return GiftReceived(
        _str(raw["order_id"], where),
        _parse_time(raw["at"], where),
        _parse_event_id(raw["event_id"], where),
        _str(raw["payer_id"], where),
    )


def _parse_cancellation(value: Json) -> Cancellation:
    where = "person.cancellations[]"
    raw = _object(value, where, _CANCELLATION_KEYS)
    return Cancellation(
        _parse_time(raw["at"], where),
        _parse_event_id(raw["event_id"], where),
        _str(raw["sku"], where),
    )


def _parse_consent(value: Json) -> ConsentFact:
    where = "person.consent[]"
    raw = _object(value, where, _CONSENT_KEYS)
    return ConsentFact(
        _parse_time(raw["at"], where), _str(raw["channel"], where), _bool(raw["granted"], where)
    )


def _parse_version(value: Json, where: str) -> DeviceVersion:
    tombstones, facts, span_total = _list(value, where, 3)
    return (_int(tombstones, where), _int(facts, where), _int(span_total, where))


def _parse_contribution(value: Json) -> DeviceContribution:
    where = "person.device_contrib[].contribution"
    raw = _object(value, where, _CONTRIBUTION_KEYS)
    days = _object(raw["days"], where)
    users = _object(raw["device_users"], where)
    return DeviceContribution(
        device_id=_str(raw["device_id"], where),
        person_id=_str(raw["person_id"], where),
        days=frozen_map(
            {_parse_date(day, where): _parse_span(span, where) for day, span in days.items()}
        ),
        activations=frozenset(_parse_time(a, where) for a in _list(raw["activations"], where)),
        is_current_user=_bool(raw["is_current_user"], where),
        product=_opt_str(raw["product"], where),
        payer_id=_opt_str(raw["payer_id"], where),
        paid_at=_parse_opt_time(raw["paid_at"], where),
        beneficiary_id=_opt_str(raw["beneficiary_id"], where),
        device_users=frozen_map({p: _parse_time(at, where) for p, at in users.items()}),
    )


def _parse_versioned(value: Json) -> VersionedContribution:
    where = "person.device_contrib[]"
    raw = _object(value, where, _VERSIONED_KEYS)
    return VersionedContribution(
        _parse_version(raw["version"], where), _parse_contribution(raw["contribution"])
    )


def _pairs(value: Json, where: str) -> list[tuple[Json, Json]]:
    return [(k, v) for k, v in (_list(pair, where, 2) for pair in _list(value, where))]


def _time_map(value: Json, where: str) -> Mapping[str, datetime]:
    return frozen_map({k: _parse_time(at, where) for k, at in _object(value, where).items()})


def person_state_from_json(data: Mapping[str, Any]) -> PersonState:
    """The person state of a schema-v1 document.

    Raises ``ValueError`` for another schema version, another kind of document or a
    malformed one.
    """
    _check_header(data, "person")
    keys = _PERSON_KEYS_WITH_CONSENT if "consent" in data else _PERSON_KEYS
    raw = _object(data, "person", keys)
    if "consent" in raw and not raw["consent"]:  # written only when not empty: canonical
        raise _fail("person.consent", "a non-empty list (or no key)", raw["consent"])
    refunds = {
        _refund_key_of(k): _parse_refund(v) for k, v in _pairs(raw["refunds"], "person.refunds")
    }
    contributions = {
        _contribution_key_of(k): _parse_versioned(v)
        for k, v in _pairs(raw["device_contrib"], "person.device_contrib")
    }
    return PersonState(
        person_id=_str(raw["person_id"], "person.person_id"),
        aliases=_parse_str_set(raw["aliases"], "person.aliases"),
        erased_at=_parse_opt_time(raw["erased_at"], "person.erased_at"),
        orders=frozen_map(
            {k: _parse_order(o) for k, o in _object(raw["orders"], "person.orders").items()}
        ),
        refunds=frozen_map(refunds),
        gifts_received=frozen_map(
            {
                k: _parse_gift(g)
                for k, g in _object(raw["gifts_received"], "person.gifts_received").items()
            }
        ),
        referrals_made=_time_map(raw["referrals_made"], "person.referrals_made"),
        referred_by=_time_map(raw["referred_by"], "person.referred_by"),
        feedback=frozen_map(
            {
                _parse_event_id(k, "person.feedback[]"): _parse_time(at, "person.feedback[]")
                for k, at in _pairs(raw["feedback"], "person.feedback")
            }
        ),
        cancellations=frozen_map(
            {
                _parse_event_id(k, "person.cancellations[]"): _parse_cancellation(c)
                for k, c in _pairs(raw["cancellations"], "person.cancellations")
            }
        ),
        device_contrib=frozen_map(contributions),
        consent=frozen_map(
            {
                _parse_event_id(k, "person.consent[]"): _parse_consent(c)
                for k, c in _pairs(raw.get("consent", []), "person.consent")
            }
        ),
    )


def _refund_key_of(value: Json) -> tuple[str, EventId]:
    where = "person.refunds[]"
    order_id, event_id = _list(value, where, 2)
    return (_str(order_id, where), _parse_event_id(event_id, where))


def _contribution_key_of(value: Json) -> ContributionKey:
    where = "person.device_contrib[]"
    device_id, person_id = _list(value, where, 2)
    return (_str(device_id, where), _str(person_id, where))


# --------------------------------------------------------------------------- identity

_IDENTITY_KEYS: Final = frozenset({"v", "kind", "links"})


def identity_graph_to_json(graph: IdentityGraph) -> dict[str, Any]:
    """The schema-v1 JSON document of an identity graph: sorted ``[smaller, larger]`` links."""
    return {
        "v": SCHEMA_VERSION,
        "kind": "identity",
        "links": sorted([first, second] for first, second in graph.links),
    }


def _parse_link(value: Json) -> Link:
    where = "identity.links[]"
    first, second = (_str(node, where) for node in _list(value, where, 2))
    return (first, second) if first <= second else (second, first)


def identity_graph_from_json(data: Mapping[str, Any]) -> IdentityGraph:
    """The identity graph of a schema-v1 document (links are stored smaller id first).

    Raises ``ValueError`` for another schema version, another kind of document or a
    malformed one.
    """
    _check_header(data, "identity")
    raw = _object(data, "identity", _IDENTITY_KEYS)
    return IdentityGraph(
        frozenset(_parse_link(link) for link in _list(raw["links"], "identity.links"))
    )


# --------------------------------------------------------------------------- bytes


def _dumps(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=_DUMPS_OPTIONS)


def _loads(data: bytes | bytearray | memoryview | str, kind: str) -> dict[str, Any]:
    document = orjson.loads(data)
    if not isinstance(document, dict):
        raise _fail(f"{kind} state", "a JSON object", document)
    return document


def _use_order(entry: tuple[UseKey, DaySpan]) -> tuple[date, bool, str]:
    (day, person), _ = entry
    return (day, person is None, person or "")


_WHOLE_SECOND: Final = re.compile(rb'("\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z"')
"""A time orjson wrote without a fraction (:func:`_time` always writes microseconds)."""
_OFFSET: Final = re.compile(rb'[+-]\d\d:\d\d"')
"""A time orjson wrote with an offset other than ``Z`` (:func:`_time` converts to UTC)."""
_FRACTION: Final = re.compile(rb'\.\d{6}Z"')


def _with_fraction(match: re.Match[bytes]) -> bytes:
    return match[1] + b'.000000Z"'


def _fast_uses(uses: Mapping[UseKey, DaySpan]) -> orjson.Fragment | None:
    """The JSON of ``uses`` as :func:`device_state_to_json` writes it, in one orjson call.

    Dates and times are left to orjson, then whole-second times get their ``.000000``.
    ``None`` (use the reference path) when a person id is not plain (escaped, or sorting
    below ``"``: then only canonical bytes give the order) or looks like a time, or a
    time is not UTC.
    """
    named = "".join([person for _, person in uses if person])
    if named and ("\\" in named or min(named) <= '"' or "Z" in named):
        return None
    try:
        items = sorted(uses.items())  # (day, person) keys are unique: spans never compared
    except TypeError:  # a day with both named and unnamed uses
        items = sorted(uses.items(), key=_use_order)
    raw = orjson.dumps(
        [[key, [span.first_at, span.last_at]] for key, span in items], option=orjson.OPT_UTC_Z
    )
    if _OFFSET.search(raw):
        return None
    fractions = len(_FRACTION.findall(raw))
    if not fractions:  # every time is a whole second (and no person id holds a "Z")
        raw = raw.replace(b'Z"', b'.000000Z"')
    elif fractions != 2 * len(items):
        raw = _WHOLE_SECOND.sub(_with_fraction, raw)
    return orjson.Fragment(raw)


def _small_sorted_list(values: frozenset[T], encode: Callable[[T], Json]) -> list[Json]:
    return [encode(v) for v in values] if len(values) < 2 else _sorted_list(values, encode)


def encode_device_state(state: DeviceState) -> bytes:
    """Canonical UTF-8 JSON bytes of a device state (equal states give equal bytes).

    The same bytes as ``orjson.dumps(device_state_to_json(state), option=OPT_SORT_KEYS)``
    (property-tested), with the ``uses`` (most of a device) written in one orjson call,
    several times faster on the projector's hot path.
    """
    uses = _fast_uses(state.uses)
    if uses is None:
        return _dumps(device_state_to_json(state))
    document = {
        "v": SCHEMA_VERSION,
        "kind": "device",
        "device_id": state.device_id,
        "activations": _small_sorted_list(state.activations, _activation),
        "deactivations": _small_sorted_list(state.deactivations, _deactivation),
        "purchases": _small_sorted_list(state.purchases, _purchase),
        "uses": uses,
        "tombstones": sorted(state.tombstones),
    }
    return orjson.dumps(document, option=_DUMPS_OPTIONS)


def encode_device_delta(state: DeviceState) -> bytes:
    """UTF-8 JSON of a device state that :func:`decode_device_state` reads back exactly,
    written in one orjson call and **not canonical** (facts in set order, times as orjson
    writes them): the projector's delta log, where documents are only ever decoded. (A
    naive time, which no parsed event carries, would be written as UTC.)
    """
    document = {
        "v": SCHEMA_VERSION,
        "kind": "device",
        "device_id": state.device_id,
        "activations": [
            {"at": a.at, "event_id": a.event_id, "person_id": a.person_id, "product": a.product}
            for a in state.activations
        ],
        "deactivations": [
            {"at": d.at, "event_id": d.event_id, "reason": d.reason} for d in state.deactivations
        ],
        "purchases": [
            {
                "at": p.at,
                "order_id": p.order_id,
                "event_id": p.event_id,
                "payer_id": p.payer_id,
                "beneficiary_id": p.beneficiary_id,
            }
            for p in state.purchases
        ],
        "uses": [[key, (span.first_at, span.last_at)] for key, span in state.uses.items()],
        "tombstones": list(state.tombstones),
    }
    return orjson.dumps(document, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def decode_device_state(data: bytes | bytearray | memoryview | str) -> DeviceState:
    """The device state encoded by :func:`encode_device_state` (``ValueError`` if not one)."""
    return device_state_from_json(_loads(data, "device"))


def encode_person_state(state: PersonState) -> bytes:
    """Canonical UTF-8 JSON bytes of a person state (equal states give equal bytes)."""
    return _dumps(person_state_to_json(state))


def decode_person_state(data: bytes | bytearray | memoryview | str) -> PersonState:
    """The person state encoded by :func:`encode_person_state` (``ValueError`` if not one)."""
    return person_state_from_json(_loads(data, "person"))


def encode_identity_graph(graph: IdentityGraph) -> bytes:
    """Canonical UTF-8 JSON bytes of an identity graph."""
    return _dumps(identity_graph_to_json(graph))


def decode_identity_graph(data: bytes | bytearray | memoryview | str) -> IdentityGraph:
    """The identity graph encoded by :func:`encode_identity_graph` (``ValueError`` if not)."""
    return identity_graph_from_json(_loads(data, "identity"))
