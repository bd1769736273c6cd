from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tenure.contract import EVENT_TYPES, CloudEvent, Rejection, validate_event
from tenure.contract.validation import CATEGORIES

from .samples import NOW, REQUIRED, TOLERANCE, event, with_data


def check(obj: object, *, now: datetime = NOW) -> CloudEvent | Rejection:
    return validate_event(obj, now=now, future_tolerance=TOLERANCE)


def rejected(obj: object, **kwargs: Any) -> Rejection:
    result = check(obj, **kwargs)
    assert isinstance(result, Rejection), result
    assert result.category in CATEGORIES
    return result


# --- valid events -----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_has_a_valid_example(event_type: str) -> None:
    raw = event(event_type)
    result = check(raw)
    assert isinstance(result, CloudEvent), result
    assert result.type == event_type
    assert result.identity == ("urn:tenure:test:producer", f"evt-{event_type}-1")
    assert result.time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert result.time.tzinfo is UTC
    assert result.data == raw["data"]
    assert result.subject is None
    assert result.extensions == {}


def test_optional_fields_may_be_omitted() -> None:
    assert isinstance(
        check(with_data("device.used", person_id=..., duration_s=..., feature=...)), CloudEvent
    )
    assert isinstance(check(with_data("feedback.submitted", rating=...)), CloudEvent)
    assert isinstance(check(with_data("payment.completed", beneficiary_id=...)), CloudEvent)


def test_datacontenttype_is_optional() -> None:
    raw = event()
    del raw["datacontenttype"]
    assert isinstance(check(raw), CloudEvent)


def test_subject_and_extensions_are_kept() -> None:
    raw = event(subject="dev-8842", traceparent="00-abc-def-01", retries=2, replay=False)
    result = check(raw)
    assert isinstance(result, CloudEvent)
    assert result.subject == "dev-8842"
    assert result.extensions == {"traceparent": "00-abc-def-01", "retries": 2, "replay": False}


def test_producer_supplied_ingesttime_is_accepted_as_an_extension() -> None:
    result = check(event(ingesttime="2000-01-01T00:00:00Z"))
    assert isinstance(result, CloudEvent)
    assert result.extensions == {"ingesttime": "2000-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T07:30:00-04:30", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:00.5+00:00", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T12:00:00-00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ],
)
def test_rfc3339_times_are_parsed_and_normalised_to_utc(text: str, expected: datetime) -> None:
    result = check(event(time=text))
    assert isinstance(result, CloudEvent), result
    assert result.time == expected
    assert result.time.tzinfo is UTC


def test_old_events_are_accepted() -> None:
    assert isinstance(check(event(time="2015-01-01T00:00:00Z")), CloudEvent)


def test_time_exactly_at_the_tolerance_is_accepted() -> None:
    at_limit = (NOW + TOLERANCE).isoformat()
    assert isinstance(check(event(time=at_limit)), CloudEvent)


def test_ids_of_200_characters_are_accepted() -> None:
    assert isinstance(check(with_data("device.used", device_id="d" * 200)), CloudEvent)


# --- malformed, envelope, unknown type --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [([], "an array"), ("x", "a string"), (None, "null"), (5, "a number"), (True, "a boolean")],
)
def test_not_an_object_is_malformed(value: object, kind: str) -> None:
    result = rejected(value)
    assert result == Rejection("event", f"must be a JSON object, not {kind}", "malformed")


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type", "time", "data"])
def test_missing_envelope_attribute(attribute: str) -> None:
    raw = event()
    del raw[attribute]
    assert rejected(raw) == Rejection(attribute, "required field is missing", "envelope")


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"specversion": "0.3"}, "specversion", 'must be "1.0"'),
        ({"specversion": 1.0}, "specversion", 'must be "1.0"'),
        ({"id": ""}, "id", "must not be empty"),
        ({"id": 17}, "id", "must be a string, not a number"),
        ({"source": ""}, "source", "must not be empty"),
        ({"source": "my device"}, "source", "must be a URI-reference"),
        ({"source": "urn:x\n"}, "source", "must be a URI-reference"),
        ({"abc\n": "x"}, "abc\n", "is not a valid CloudEvents attribute name"),
        ({"type": 5}, "type", "must be a string, not a number"),
        ({"subject": 5}, "subject", "must be a string, not a number"),
        ({"datacontenttype": "text/plain"}, "datacontenttype", 'must be "application/json"'),
        ({"data": [1, 2]}, "data", "must be an object, not an array"),
        ({"data": None}, "data", "must be an object, not null"),
        ({"Bad-Name": "x"}, "Bad-Name", "is not a valid CloudEvents attribute name"),
        ({"a" * 21: "x"}, "a" * 21, "is not a valid CloudEvents attribute name"),
        ({"myext": {"a": 1}}, "myext", "must be a string, a number or a boolean, not an object"),
        ({"myext": None}, "myext", "must be a string, a number or a boolean, not null"),
    ],
)
def test_envelope_errors(overrides: dict[str, Any], field: str, reason: str) -> None:
    result = rejected(event(**overrides))
    assert (result.field, result.category) == (field, "envelope")
    assert result.reason.startswith(reason), result.reason


@pytest.mark.parametrize("event_type", ["device.exploded", "Device.Used", "", "device.used.v2"])
def test_unknown_type(event_type: str) -> None:
    result = rejected(event(type=event_type))
    assert result == Rejection("type", f"is not a known event type: {event_type}", "unknown_type")


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:00:00",  # no offset
        "2024-05-01T12:00:00.123",  # no offset
        "2024-05-01",  # date only
        "2024-05-01 12:00:00Z",  # space separator
        "2024-05-01T12:00Z",  # no seconds
        "2024-05-01T12:00:00+0200",  # offset without colon
        "2024-05-01T12:00:00+02",  # short offset
        "2024-05-01T12:00:00.Z",  # empty fraction
        "20240501T120000Z",  # basic format
        "2024-W18-3T12:00:00Z",  # week date
        "1 May 2024 12:00:00 GMT",
        "2024-05-01T12:00:00Z\n",
        "",
    ],
)
def test_badly_formatted_times(text: str) -> None:
    result = rejected(event(time=text))
    assert (result.field, result.category) == ("time", "envelope")
    assert "RFC 3339" in result.reason


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:00:60Z",
        "2024-05-01T12:00:00+24:00",
    ],
)
def test_impossible_times(text: str) -> None:
    result = rejected(event(time=text))
    assert (result.field, result.category) == ("time", "envelope")
    assert result.reason.startswith("is not a valid RFC 3339 date and time")


def test_time_must_be_a_string() -> None:
    result = rejected(event(time=1714564800))
    assert result == Rejection("time", "must be a string, not a number", "envelope")


def test_future_time_beyond_tolerance_is_rejected() -> None:
    result = rejected(event(time="2024-05-01T13:00:30Z"))
    assert result == Rejection(
        "time", "is 3600 s in the future; the tolerance is 300 s", "future_time"
    )


def test_future_time_just_beyond_tolerance_is_rejected() -> None:
    late = (NOW + TOLERANCE + timedelta(milliseconds=1)).isoformat()
    result = rejected(event(time=late))
    assert result == Rejection(
        "time", "is 300.001 s in the future; the tolerance is 300 s", "future_time"
    )


def test_future_time_compares_instants_not_wall_clocks() -> None:
    # 14:04 at +02:00 is 12:04 UTC: within the tolerance of NOW (12:00:30 UTC).
    assert isinstance(check(event(time="2024-05-01T14:04:00+02:00")), CloudEvent)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        validate_event(event(), now=datetime(2024, 5, 1), future_tolerance=TOLERANCE)


def test_now_in_another_zone_is_fine() -> None:
    now = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert isinstance(check(event(), now=now), CloudEvent)


# --- data -------------------------------------------------------------------------------------


BOOLEAN_FIELDS = frozenset({"granted"})
"""Required data fields that are booleans (``person.consent_changed``)."""
MISSING = [(t, name) for t, names in REQUIRED.items() for name in names]


@pytest.mark.parametrize(("event_type", "name"), MISSING)
def test_missing_required_data_field(event_type: str, name: str) -> None:
    result = rejected(with_data(event_type, **{name: ...}))
    assert result == Rejection(f"data.{name}", "required field is missing", "schema")


@pytest.mark.parametrize(("event_type", "name"), MISSING)
def test_required_id_like_fields_must_be_of_the_right_type(event_type: str, name: str) -> None:
    wrong = "true" if name in BOOLEAN_FIELDS else True  # the one wrong type of a flag is a string
    result = rejected(with_data(event_type, **{name: wrong}))
    assert result.field == f"data.{name}"
    assert result.category == "schema"
    assert result.reason.startswith("must be ")


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_extra_data_field_is_rejected(event_type: str) -> None:
    result = rejected(with_data(event_type, devcie_id="dev-1"))
    assert result.field == "data.devcie_id"
    assert result.category == "schema"
    assert result.reason.startswith("is not an allowed field; allowed fields: ")


@pytest.mark.parametrize(
    ("event_type", "changes", "field", "reason"),
    [
        ("device.used", {"device_id": ""}, "data.device_id", "must not be empty"),
        (
            "device.used",
            {"device_id": "d" * 201},
            "data.device_id",
            "must be at most 200 characters long",
        ),
        ("device.used", {"device_id": 8842}, "data.device_id", "must be a string, not a number"),
        ("device.used", {"duration_s": "12"}, "data.duration_s", "must be a number, not a string"),
        ("device.used", {"duration_s": -0.5}, "data.duration_s", "must be at least 0"),
        ("device.used", {"feature": 3}, "data.feature", "must be a string, not a number"),
        (
            "device.deactivated",
            {"reason": "stolen"},
            "data.reason",
            "must be one of: reset, resale, returned, other",
        ),
        (
            "person.consent_changed",
            {"channel": "letter"},
            "data.channel",
            "must be one of: email, push, sms, in_app",
        ),
        (
            "person.consent_changed",
            {"granted": "yes"},
            "data.granted",
            "must be a boolean, not a string",
        ),
        (
            "person.consent_changed",
            {"granted": 1},
            "data.granted",
            "must be a boolean, not a number",
        ),
        (
            "person.consent_changed",
            {"channel": None},
            "data.channel",
            "must be a string, not null",
        ),
        ("person.consent_changed", {"person_id": ""}, "data.person_id", "must not be empty"),
        ("feedback.submitted", {"rating": 4.5}, "data.rating", "must be an integer, not a number"),
        ("feedback.submitted", {"rating": 0}, "data.rating", "must be at least 1"),
        ("feedback.submitted", {"rating": 6}, "data.rating", "must be at most 5"),
        ("feedback.submitted", {"rating": "5"}, "data.rating", "must be an integer, not a string"),
        ("payment.refunded", {"amount_minor": -1}, "data.amount_minor", "must be at least 0"),
        (
            "payment.refunded",
            {"amount_minor": 12.5},
            "data.amount_minor",
            "must be an integer, not a number",
        ),
        (
            "payment.refunded",
            {"currency": "eur"},
            "data.currency",
            "must be an ISO 4217 currency code",
        ),
        (
            "payment.refunded",
            {"currency": "EURO"},
            "data.currency",
            "must be an ISO 4217 currency code",
        ),
        (
            "payment.refunded",
            {"currency": "E1R"},
            "data.currency",
            "must be an ISO 4217 currency code",
        ),
        (
            "payment.refunded",
            {"currency": "EUR\n"},
            "data.currency",
            "must be an ISO 4217 currency code",
        ),
        ("payment.completed", {"items": []}, "data.items", "must not be empty"),
        (
            "payment.completed",
            {"items": {"sku": "x"}},
            "data.items",
            "must be an array, not an object",
        ),
        ("payment.completed", {"beneficiary_id": ""}, "data.beneficiary_id", "must not be empty"),
    ],
)
def test_data_errors(event_type: str, changes: dict[str, Any], field: str, reason: str) -> None:
    result = rejected(with_data(event_type, **changes))
    assert (result.field, result.category) == (field, "schema")
    assert result.reason.startswith(reason), result.reason


def _item(**changes: Any) -> dict[str, Any]:
    raw = event("payment.completed")
    item = raw["data"]["items"][1]
    for name, value in changes.items():
        if value is ...:
            del item[name]
        else:
            item[name] = value
    return raw


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"sku": ...}, "data.items[1].sku", "required field is missing"),
        ({"category": ...}, "data.items[1].category", "required field is missing"),
        ({"amount_minor": ...}, "data.items[1].amount_minor", "required field is missing"),
        ({"currency": ...}, "data.items[1].currency", "required field is missing"),
        (
            {"amount_minor": "49.00"},
            "data.items[1].amount_minor",
            "must be an integer, not a string",
        ),
        ({"amount_minor": -100}, "data.items[1].amount_minor", "must be at least 0"),
        (
            {"category": "gift"},
            "data.items[1].category",
            "must be one of: hardware, subscription, service, accessory",
        ),
        ({"currency": "usd"}, "data.items[1].currency", "must be an ISO 4217 currency code"),
        ({"device_id": ""}, "data.items[1].device_id", "must not be empty"),
        ({"price": 1}, "data.items[1].price", "is not an allowed field"),
    ],
)
def test_payment_item_errors(changes: dict[str, Any], field: str, reason: str) -> None:
    result = rejected(_item(**changes))
    assert (result.field, result.category) == (field, "schema")
    assert result.reason.startswith(reason), result.reason


def test_items_of_one_order_must_share_one_currency() -> None:
    result = rejected(_item(currency="USD"))
    assert result == Rejection(
        "data.items[1].currency",
        "is USD but data.items[0].currency is EUR; all items of one order must share one currency",
        "schema",
    )


def test_item_must_be_an_object() -> None:
    raw = event("payment.completed")
    raw["data"]["items"].append("sku-1")
    result = rejected(raw)
    assert result == Rejection("data.items[2]", "must be an object, not a string", "schema")


# --- which error wins -------------------------------------------------------------------------


def test_required_comes_before_unknown_type() -> None:
    raw = event(type="nope")
    del raw["id"]
    assert rejected(raw).field == "id"


def test_envelope_comes_before_data() -> None:
    raw = with_data("device.used", device_id=...)
    raw["source"] = ""
    assert rejected(raw).field == "source"


def test_time_format_comes_before_data() -> None:
    raw = with_data("device.used", device_id=...)
    raw["time"] = "yesterday"
    assert rejected(raw).field == "time"


def test_required_comes_before_type_errors_in_data() -> None:
    raw = with_data("device.used", device_id=..., duration_s="long")
    assert rejected(raw).field == "data.device_id"


def test_type_errors_come_before_unknown_fields() -> None:
    raw = with_data("device.used", duration_s="long", extra=1)
    assert rejected(raw).field == "data.duration_s"


def test_shallow_errors_come_before_deep_ones() -> None:
    raw = _item(sku=...)
    del raw["data"]["order_id"]
    assert rejected(raw).field == "data.order_id"


def test_several_missing_fields_are_reported_in_a_stable_order() -> None:
    raw = event("payment.refunded", data={})
    assert rejected(raw).field == "data.amount_minor"


def test_several_bad_extensions_are_reported_deterministically() -> None:
    raw = event(zeta={}, alpha=[], mid=None)
    assert rejected(raw).field == "alpha"


def test_data_errors_come_before_future_time() -> None:
    raw = with_data("device.used", device_id=...)
    raw["time"] = "2030-01-01T00:00:00Z"
    assert rejected(raw).field == "data.device_id"


def test_validation_does_not_modify_the_input() -> None:
    raw = event("payment.completed", subject="s", ingesttime="2000-01-01T00:00:00Z")
    before = repr(raw)
    check(raw)
    assert repr(raw) == before
