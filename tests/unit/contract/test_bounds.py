"""Storability bounds: what ingest accepts, every later stage can store (issue 11).

Each case below was accepted (or crashed the validator with an exception, a 500 at ingest)
before the bounds existed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sdk_validator.routing import route_sdk_record
from tenure.contract import CloudEvent, Rejection, decode_batch, encode_record, validate_event
from tenure.contract.bounds import INT64_MAX, INT64_MIN, unstorable
from tenure.eventlog.deadletter import DeadLetter

from .samples import NOW, TOLERANCE, event, with_data
from .test_properties import events

INT64_REASON = (
    "must be between -9223372036854775808 and 9223372036854775807 (a signed 64-bit integer)"
)
NUL_REASON = "must not contain the NUL character (U+0000)"
TIME_REASON = (
    "is out of range: must be from 1970-01-01T00:00:00Z up to (not including) 9000-01-01T00:00:00Z"
)


def check(obj: object) -> CloudEvent | Rejection:
    return validate_event(obj, now=NOW, future_tolerance=TOLERANCE)


def through_json(raw: dict[str, Any], **literals: bytes) -> object:
    """``raw`` as the ingest service decodes it, with placeholders ``"@name"`` replaced by
    literal JSON (numbers orjson cannot write, such as 18446744073709551616)."""
    body = orjson.dumps(raw)
    for name, literal in literals.items():
        body = body.replace(orjson.dumps(f"@{name}"), literal)
    return decode_batch(body, "application/json")[0]


def payment(amount: object) -> dict[str, Any]:
    raw = event("payment.completed")
    raw["data"]["items"][0]["amount_minor"] = amount
    return raw


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [b"18446744073709551616", b"18446744073709551615", b"9223372036854775808", b"1e30", b"1E19"],
)
def test_amounts_beyond_64_bits_are_rejected_naming_the_field(literal: bytes) -> None:
    decoded = through_json(payment("@big"), big=literal)
    assert check(decoded) == Rejection("data.items[0].amount_minor", INT64_REASON, "schema")


@pytest.mark.parametrize("amount", [10**15 + 1, 9.0e18, 1e16])
def test_amounts_beyond_the_documented_maximum_are_rejected(amount: float) -> None:
    result = check(payment(amount))
    assert result == Rejection(
        "data.items[0].amount_minor", "must be at most 1000000000000000", "schema"
    )


def test_the_largest_amount_is_accepted_and_encodes() -> None:
    result = check(payment(10**15))
    assert isinstance(result, CloudEvent)
    assert b"1000000000000000" in encode_record(result, ingest_time=NOW)


def test_refund_amounts_are_bounded_too() -> None:
    decoded = through_json(with_data("payment.refunded", amount_minor="@big"), big=b"1e30")
    assert check(decoded) == Rejection("data.amount_minor", INT64_REASON, "schema")


@pytest.mark.parametrize(
    ("literal", "field", "category"),
    [
        (b"1e30", "retries", "envelope"),
        (b"-1e30", "retries", "envelope"),
        (b"18446744073709551615", "retries", "envelope"),
        (b"-1E19", "retries", "envelope"),
    ],
)
def test_extension_numbers_are_bounded(literal: bytes, field: str, category: str) -> None:
    decoded = through_json(event(retries="@n"), n=literal)
    assert check(decoded) == Rejection(field, INT64_REASON, category)


def test_extension_numbers_at_the_int64_ends_are_accepted() -> None:
    for value in (INT64_MIN, INT64_MAX, 1.5, -0.0):
        assert isinstance(check(event(retries=value)), CloudEvent), value


def test_durations_are_bounded() -> None:
    assert check(with_data("device.used", duration_s=1e30)) == Rejection(
        "data.duration_s", INT64_REASON, "schema"
    )
    assert check(with_data("device.used", duration_s=31622401)) == Rejection(
        "data.duration_s", "must be at most 31622400", "schema"
    )
    assert isinstance(check(with_data("device.used", duration_s=31622400)), CloudEvent)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_rejected(value: float) -> None:
    # orjson never decodes these; a Python producer of the SDK path could still build them.
    assert check(with_data("device.used", duration_s=value)) == Rejection(
        "data.duration_s", "must be a finite number", "schema"
    )


# --- lengths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("attribute", "limit"), [("id", 256), ("source", 512), ("subject", 256)])
def test_envelope_strings_have_a_maximum_length(attribute: str, limit: int) -> None:
    assert isinstance(check(event(**{attribute: "a" * limit})), CloudEvent)
    result = check(event(**{attribute: "a" * (limit + 1)}))
    assert result == Rejection(attribute, f"must be at most {limit} characters long", "envelope")


def test_the_reported_cases_of_the_issue() -> None:
    assert check(event(id="x" * 3000)) == Rejection(
        "id", "must be at most 256 characters long", "envelope"
    )
    assert check(event(source="urn:" + "s" * 4996)) == Rejection(
        "source", "must be at most 512 characters long", "envelope"
    )


def test_extension_strings_have_a_maximum_length() -> None:
    assert isinstance(check(event(note="n" * 1024)), CloudEvent)
    assert check(event(note="n" * 1025)) == Rejection(
        "note", "must be at most 1024 characters long", "envelope"
    )


@pytest.mark.parametrize(
    ("event_type", "name"), [("device.used", "feature"), ("feedback.submitted", "channel")]
)
def test_free_text_data_fields_have_a_maximum_length(event_type: str, name: str) -> None:
    assert isinstance(check(with_data(event_type, **{name: "f" * 200})), CloudEvent)
    assert check(with_data(event_type, **{name: "f" * 201})) == Rejection(
        f"data.{name}", "must be at most 200 characters long", "schema"
    )


# --- NUL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "category"),
    [
        (event(id="evt\x00-1"), "id", "envelope"),
        (event(subject="dev\x00"), "subject", "envelope"),
        (event(traceparent="00-\x00"), "traceparent", "envelope"),
        (event(type="device.used\x00"), "type", "envelope"),
        (event(time="2024-05-01T12:00:00Z\x00"), "time", "envelope"),
        (with_data("device.used", device_id="\x00"), "data.device_id", "schema"),
        (with_data("device.used", feature="eco\x00mode"), "data.feature", "schema"),
        (with_data("device.activated", person_id="p\x00"), "data.person_id", "schema"),
        (with_data("feedback.submitted", channel="\x00app"), "data.channel", "schema"),
        (with_data("payment.refunded", payer_id="p\x00"), "data.payer_id", "schema"),
    ],
)
def test_nul_in_any_string_is_rejected_naming_the_field(
    raw: dict[str, Any], field: str, category: str
) -> None:
    assert check(raw) == Rejection(field, NUL_REASON, category)


def test_nul_in_a_nested_value_and_in_a_field_name() -> None:
    raw = event("payment.completed")
    raw["data"]["items"][0]["sku"] = "sku\x00"
    assert check(raw) == Rejection("data.items[0].sku", NUL_REASON, "schema")
    raw = event()
    raw["data"]["dev\x00"] = "x"
    rejected = check(raw)
    assert isinstance(rejected, Rejection)
    assert (rejected.field, rejected.category) == ("data.dev\\u0000", "schema")
    assert "\x00" not in rejected.field + rejected.reason


def test_nul_decoded_from_a_json_escape_is_rejected() -> None:
    body = orjson.dumps(event()).replace(b'"evt-device.used-1"', b'"evt\\u0000"')
    assert check(decode_batch(body, "application/json")[0]) == Rejection(
        "id", NUL_REASON, "envelope"
    )


@settings(max_examples=100, deadline=None)
@given(events(), st.data())
def test_nul_anywhere_in_data_is_rejected_naming_that_field(
    raw: dict[str, Any], data: st.DataObject
) -> None:
    strings = [(name, value) for name, value in raw["data"].items() if isinstance(value, str)]
    name, value = data.draw(st.sampled_from(strings))
    at = data.draw(st.integers(0, len(value)))
    raw["data"][name] = value[:at] + "\x00" + value[at:]
    assert validate_event(raw, now=NOW, future_tolerance=TOLERANCE) == Rejection(
        f"data.{name}", NUL_REASON, "schema"
    )


# --- time -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:30:00+01:00",  # overflows when brought to UTC
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",  # overflows when brought to UTC
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:59:59+01:00",
    ],
)
def test_times_outside_the_storable_range_are_rejected(text: str) -> None:
    far_future = timedelta(days=3_000_000)
    result = validate_event(event(time=text), now=NOW, future_tolerance=far_future)
    assert result == Rejection("time", TIME_REASON, "envelope")


def test_the_ends_of_the_time_range() -> None:
    far_future = timedelta(days=3_000_000)
    for text in ("1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", "8999-12-31T23:59:59Z"):
        result = validate_event(event(time=text), now=NOW, future_tolerance=far_future)
        assert isinstance(result, CloudEvent), text


# --- unstorable() itself and the SDK path ----------------------------------------------------


def test_unstorable_reports_the_first_offender_in_document_order() -> None:
    assert unstorable({"a": [1, "x", {"b": "\x00"}], "c": 1e30}) == ("a[2].b", NUL_REASON)
    assert unstorable({"a": 1, "c": [2**64]}) == ("c[0]", INT64_REASON)
    assert unstorable("\x00") == ("event", NUL_REASON)
    assert unstorable({"a": [True, None, 1.5, "ok"]}) is None


def test_unstorable_copes_with_any_nesting_depth() -> None:
    deep: object = "\x00"
    for _ in range(5000):
        deep = [deep]
    found = unstorable({"data": deep})
    assert found is not None and found[0].startswith("data[0][0]")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (orjson.dumps(payment("@big")).replace(b'"@big"', b"18446744073709551616"), None),
        (orjson.dumps(event(id="x" * 3000)), "id"),
        (orjson.dumps(event(time="0001-01-01T00:30:00+01:00")), "time"),
        (orjson.dumps(with_data("device.used", device_id="d\x00")), "data.device_id"),
    ],
)
def test_the_sdk_validator_dead_letters_out_of_range_events(
    value: bytes, field: str | None
) -> None:
    routed = route_sdk_record(
        b"k",
        value,
        origin="sdk/0/1",
        now=datetime(2024, 5, 1, 12, tzinfo=UTC),
        future_tolerance=TOLERANCE,
    )
    assert isinstance(routed, DeadLetter)
    assert routed.value == value
    assert routed.field == (field or "data.items[0].amount_minor")
