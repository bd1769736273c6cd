"""The person document: its field tables, encoder and decoder.

Maps keyed by an id (``orders``, ``gifts_received``, ``referrals_made``, ``referred_by``)
are objects; ``refunds`` (key ``[order_id, event_id]``), ``feedback`` and ``cancellations``
(key ``event_id``) and ``device_contrib`` (key ``[device_id, person_id]``) are sorted lists
of ``[key, value]`` pairs; so is ``consent`` (key ``event_id``), written only when the
person has consent facts.
"""

from __future__ import annotations

from typing import Final

from tenure.domain.contribution import DeviceContribution
from tenure.domain.device import DeviceVersion
from tenure.domain.events import PaymentItem
from tenure.domain.person import (
    Cancellation,
    ConsentFact,
    GiftReceived,
    Order,
    PersonState,
    Refund,
    VersionedContribution,
)
from tenure.domain.state_codec.json_values import (
    Json,
    read_int,
    read_list,
)
from tenure.domain.state_codec.layout import Field, Layout
from tenure.domain.state_codec.shapes import (
    BOOL,
    EVENT_ID,
    INT,
    OPT_TEXT,
    OPT_TIME,
    SPAN,
    STR_SET,
    TEXT,
    TIME,
    Shape,
    entries,
    keyed_by_date,
    keyed_by_text,
    pair_of,
    reading,
    set_of,
    tuple_of,
)

ITEM: Final = Layout(
    PaymentItem,
    "person.orders.items[]",
    (
        Field("sku", TEXT),
        Field("category", TEXT),
        Field("amount_minor", INT),
        Field("currency", TEXT),
        Field("device_id", OPT_TEXT),
    ),
)
ORDER: Final = Layout(
    Order,
    "person.orders{}",
    (
        Field("order_id", TEXT),
        Field("at", TIME),
        Field("event_id", EVENT_ID),
        Field("items", tuple_of(ITEM.shape)),
        Field("beneficiary_id", OPT_TEXT),
    ),
)
REFUND: Final = Layout(
    Refund,
    "person.refunds[]",
    (
        Field("order_id", TEXT),
        Field("at", TIME),
        Field("event_id", EVENT_ID),
        Field("amount_minor", INT),
        Field("currency", TEXT),
    ),
)
GIFT: Final = Layout(
    GiftReceived,
    "person.gifts_received{}",
    (
        Field("order_id", TEXT),
        Field("at", TIME),
        Field("event_id", EVENT_ID),
        Field("payer_id", TEXT),
    ),
)
CANCELLATION: Final = Layout(
    Cancellation,
    "person.cancellations[]",
    (Field("at", TIME), Field("event_id", EVENT_ID), Field("sku", TEXT)),
)
CONSENT: Final = Layout(
    ConsentFact,
    "person.consent[]",
    (Field("at", TIME), Field("channel", TEXT), Field("granted", BOOL)),
)
CONTRIBUTION: Final = Layout(
    DeviceContribution,
    "person.device_contrib[].contribution",
    (
        Field("device_id", TEXT),
        Field("person_id", TEXT),
        Field("days", keyed_by_date(SPAN)),
        Field("activations", set_of(TIME)),
        Field("is_current_user", BOOL),
        Field("product", OPT_TEXT),
        Field("payer_id", OPT_TEXT),
        Field("paid_at", OPT_TIME),
        Field("beneficiary_id", OPT_TEXT),
        Field("device_users", keyed_by_text(TIME)),
    ),
)


def _read_version(value: Json, where: str) -> DeviceVersion:
    tombstones, facts, span_total = read_list(value, where, 3)
    return (read_int(tombstones, where), read_int(facts, where), read_int(span_total, where))


VERSION: Final[Shape[DeviceVersion]] = Shape(
    lambda value, names: f"list({value})", reading(_read_version)
)
"""A device version (:func:`tenure.domain.knowledge.device_version`): a list of three ints."""

VERSIONED: Final = Layout(
    VersionedContribution,
    "person.device_contrib[]",
    (Field("version", VERSION), Field("contribution", CONTRIBUTION.shape)),
)

PERSON: Final = Layout(
    PersonState,
    "person",
    (
        Field("person_id", TEXT),
        Field("aliases", STR_SET),
        Field("erased_at", OPT_TIME),
        Field("orders", keyed_by_text(ORDER.shape)),
        Field("refunds", entries(pair_of(TEXT, EVENT_ID), REFUND.shape)),
        Field("gifts_received", keyed_by_text(GIFT.shape)),
        Field("referrals_made", keyed_by_text(TIME)),
        Field("referred_by", keyed_by_text(TIME)),
        Field("feedback", entries(EVENT_ID, TIME)),
        Field("cancellations", entries(EVENT_ID, CANCELLATION.shape)),
        Field("device_contrib", entries(pair_of(TEXT, TEXT), VERSIONED.shape)),
        Field("consent", entries(EVENT_ID, CONSENT.shape), omit_empty=True),
    ),
    kind="person",
)
"""The person document (schema v1). ``consent`` came later: written only when not empty."""


person_state_to_json: Final = PERSON.to_json
"""The schema-v1 JSON document of a person state (canonical; see the module doc)."""
person_state_from_json: Final = PERSON.from_json
"""The person state of a schema-v1 document (``ValueError`` for another schema version,
another kind of document or a malformed one)."""
encode_person_state: Final = PERSON.encode
"""Canonical UTF-8 JSON bytes of a person state (equal states give equal bytes)."""
decode_person_state: Final = PERSON.decode
"""The person state encoded by :func:`encode_person_state` (``ValueError`` if not one)."""
