"""The device document: field tables, the canonical and the fast encoders, the decoder.

``uses`` is a sorted list of ``[[day, person_id or null], [first_at, last_at]]``; the
other facts are sets of records (sorted by their canonical bytes), ``tombstones`` a sorted
list of strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Final

import orjson

from tenure.domain.device import Activation, Deactivation, DevicePurchase, DeviceState, UseKey
from tenure.domain.lattice import DaySpan
from tenure.domain.state_codec.json_values import (
    Json,
    read_date,
    read_list,
    read_opt_str,
)
from tenure.domain.state_codec.layout import Field, Layout
from tenure.domain.state_codec.shapes import (
    AS_IS,
    EVENT_ID,
    OPT_TEXT,
    SPAN,
    STR_SET,
    TEXT,
    TIME,
    Shape,
    checked,
    entries,
    set_of,
    written_first_by,
)

ACTIVATION: Final = Layout(
    Activation,
    "device.activations[]",
    (
        Field("at", TIME),
        Field("event_id", EVENT_ID),
        Field("person_id", TEXT),
        Field("product", TEXT),
    ),
)
DEACTIVATION: Final = Layout(
    Deactivation,
    "device.deactivations[]",
    (Field("at", TIME), Field("event_id", EVENT_ID), Field("reason", TEXT)),
)
PURCHASE: Final = Layout(
    DevicePurchase,
    "device.purchases[]",
    (
        Field("at", TIME),
        Field("order_id", TEXT),
        Field("event_id", EVENT_ID),
        Field("payer_id", TEXT),
        Field("beneficiary_id", OPT_TEXT),
    ),
)


def _read_use_key(value: Json, where: str) -> UseKey:
    day, person = read_list(value, where, 2)
    return (read_date(day, where), read_opt_str(person, where))


USE_KEY: Final[Shape[UseKey]] = Shape(
    lambda key, names: f"[{key}[0].isoformat(), {key}[1]]",
    checked(
        lambda key: f"type({key}) is list and len({key}) == 2",
        _read_use_key,
        lambda key, where, names: (
            f"({names.of(read_date, 'read_date')}({key}[0], {where!r}),"
            f" {OPT_TEXT.parse(f'{key}[1]', where, names)})"
        ),
    ),
    AS_IS,
)
"""A day of use and the person it names: ``[day, person_id or null]``."""


def _use_order(entry: tuple[UseKey, DaySpan]) -> tuple[date, bool, str]:
    (day, person), _ = entry
    return (day, person is None, person or "")


_WHOLE_SECOND: Final = re.compile(rb'("\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z"')
"""A time orjson wrote without a fraction (:func:`write_time` always writes microseconds)."""
_FRACTION: Final = re.compile(rb'\.\d{6}Z"')


def _with_fraction(match: re.Match[bytes]) -> bytes:
    return match[1] + b'.000000Z"'


def _fast_uses(uses: Mapping[UseKey, DaySpan]) -> orjson.Fragment | None:
    """The canonical JSON of ``uses`` (as :data:`DEVICE` writes it) in one orjson call.

    Dates and times are left to orjson, then whole-second times get their ``.000000``.
    ``None`` (use the reference path) when a person id is not plain (escaped, or sorting
    below ``"``: then only canonical bytes give the order) or holds a ``Z`` (then ``Z"``
    does not count the times), or a time is not UTC (orjson writes it without ``Z``).
    """
    named = "".join([person for _, person in uses if person])
    if named and ("\\" in named or min(named) <= '"' or "Z" in named):
        return None
    try:
        items = sorted(uses.items())  # (day, person) keys are unique: spans never compared
    except TypeError:  # a day with both named and unnamed uses
        items = sorted(uses.items(), key=_use_order)
    raw = orjson.dumps(
        [(key, (span.first_at, span.last_at)) for key, span in items], option=orjson.OPT_UTC_Z
    )
    if raw.count(b'Z"') != 2 * len(items):  # a time with another offset, or naive
        return None
    fractions = len(_FRACTION.findall(raw))
    if not fractions:  # every time is a whole second (and no person id holds a "Z")
        raw = raw.replace(b'Z"', b'.000000Z"')
    elif fractions != 2 * len(items):
        raw = _WHOLE_SECOND.sub(_with_fraction, raw)
    return orjson.Fragment(raw)


DEVICE: Final = Layout(
    DeviceState,
    "device",
    (
        Field("device_id", TEXT),
        Field("activations", set_of(ACTIVATION.shape)),
        Field("deactivations", set_of(DEACTIVATION.shape)),
        Field("purchases", set_of(PURCHASE.shape)),
        Field("uses", written_first_by(entries(USE_KEY, SPAN), _fast_uses)),
        Field("tombstones", STR_SET),
    ),
    kind="device",
)
"""The device document (schema v1)."""

device_state_to_json: Final = DEVICE.to_json
"""The schema-v1 JSON document of a device state (canonical; see the package doc)."""
device_state_from_json: Final = DEVICE.from_json
"""The device state of a schema-v1 document (``ValueError`` for another schema version,
another kind of document or a malformed one)."""
decode_device_state: Final = DEVICE.decode
"""The device state encoded by :func:`encode_device_state` (``ValueError`` if not one)."""


encode_device_state: Final = DEVICE.encode
"""Canonical UTF-8 JSON bytes of a device state (equal states give equal bytes), with the
``uses`` (most of a device) written in one orjson call (:func:`_fast_uses`; the same bytes
as ``orjson.dumps(device_state_to_json(state), option=OPT_SORT_KEYS)``, property-tested)."""
encode_device_delta: Final = DEVICE.encode_fast
"""UTF-8 JSON of a device state that :func:`decode_device_state` reads back exactly, written
in one orjson call and **not canonical** (facts in set order, times as orjson writes them):
the projector's raw device states (delta log and compacted rows), where documents are only
ever decoded."""
