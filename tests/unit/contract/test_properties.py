from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.contract import CloudEvent, Rejection, decode_batch, validate_event
from tenure.contract.envelope import CORE_ATTRIBUTES

from .samples import REQUIRED

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TOLERANCE = timedelta(seconds=300)

# Any character but NUL, which no event may carry (tenure.contract.bounds).
characters = st.characters(codec="utf-8", exclude_characters="\x00")
text = st.text(characters, max_size=30)
ids = st.text(characters, min_size=1, max_size=200)
money = st.integers(min_value=0, max_value=10**12)
currency = st.from_regex(r"[A-Z]{3}", fullmatch=True)
sources = st.from_regex(r"(urn:|https://|/)[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]{1,40}", fullmatch=True)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
times = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2029, 12, 31), timezones=offsets
)
scalars = st.one_of(
    text,
    st.integers(-(2**53), 2**53),
    st.floats(min_value=-(2.0**63), max_value=2.0**62),
    st.booleans(),
)
extension_names = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
    lambda n: n not in CORE_ATTRIBUTES
)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def item(cur: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "sku": ids,
            "category": st.sampled_from(["hardware", "subscription", "service", "accessory"]),
            "amount_minor": money,
            "currency": st.just(cur),
        },
        optional={"device_id": ids},
    )


DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "device.activated": st.fixed_dictionaries({"device_id": ids, "person_id": ids, "product": ids}),
    "device.used": st.fixed_dictionaries(
        {"device_id": ids},
        optional={
            "person_id": ids,
            "duration_s": st.floats(min_value=0, max_value=31622400) | st.integers(0, 31622400),
            "feature": text,
        },
    ),
    "device.deactivated": st.fixed_dictionaries(
        {"device_id": ids, "reason": st.sampled_from(["reset", "resale", "returned", "other"])}
    ),
    "payment.completed": currency.flatmap(
        lambda cur: st.fixed_dictionaries(
            {
                "order_id": ids,
                "payer_id": ids,
                "items": st.lists(item(cur), min_size=1, max_size=4),
            },
            optional={"beneficiary_id": ids},
        )
    ),
    "payment.refunded": st.fixed_dictionaries(
        {"order_id": ids, "payer_id": ids, "amount_minor": money, "currency": currency}
    ),
    "subscription.cancelled": st.fixed_dictionaries({"person_id": ids, "sku": ids}),
    "referral.completed": st.fixed_dictionaries({"referrer_id": ids, "referee_id": ids}),
    "feedback.submitted": st.fixed_dictionaries(
        {"person_id": ids, "channel": text}, optional={"rating": st.integers(1, 5)}
    ),
    "identity.linked": st.fixed_dictionaries({"person_id": ids, "alias_id": ids}),
    "person.erasure_requested": st.fixed_dictionaries({"person_id": ids}),
    "person.consent_changed": st.fixed_dictionaries(
        {
            "person_id": ids,
            "channel": st.sampled_from(["email", "push", "sms", "in_app"]),
            "granted": st.booleans(),
        }
    ),
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(DATA)))
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(ids),
        "source": draw(sources),
        "type": event_type,
        "time": draw(times).isoformat(),
        "data": draw(DATA[event_type]),
    }
    raw.update(draw(optional(subject=text, datacontenttype=st.just("application/json"))))
    raw.update(draw(st.dictionaries(extension_names, scalars, max_size=3)))
    return raw


def valid(obj: object) -> CloudEvent:
    result = validate_event(obj, now=NOW, future_tolerance=TOLERANCE)
    assert isinstance(result, CloudEvent), (result, obj)
    return result


@settings(max_examples=200, deadline=None)
@given(events())
def test_generated_events_validate_and_round_trip(raw: dict[str, Any]) -> None:
    first = valid(raw)
    assert valid(first.to_json_dict()) == first
    through_json = orjson.loads(orjson.dumps(first.to_json_dict(ingest_time=NOW)))
    second = valid(through_json)
    assert second.extensions == {**first.extensions, "ingesttime": "2030-01-01T00:00:00Z"}
    assert (second.identity, second.type, second.time, second.data, second.subject) == (
        first.identity,
        first.type,
        first.time,
        first.data,
        first.subject,
    )


@settings(max_examples=100, deadline=None)
@given(events(), st.data())
def test_dropping_a_required_field_names_it(raw: dict[str, Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(REQUIRED[raw["type"]]))
    del raw["data"][name]
    result = validate_event(raw, now=NOW, future_tolerance=TOLERANCE)
    assert result == Rejection(f"data.{name}", "required field is missing", "schema")


@settings(max_examples=100, deadline=None)
@given(events(), extension_names.filter(lambda n: n not in ("ingesttime",)))
def test_unknown_data_field_is_rejected(raw: dict[str, Any], name: str) -> None:
    raw["data"]["x_" + name] = 1
    result = validate_event(raw, now=NOW, future_tolerance=TOLERANCE)
    assert isinstance(result, Rejection)
    assert (result.field, result.category) == (f"data.x_{name}", "schema")


@settings(max_examples=50, deadline=None)
@given(st.recursive(scalars | st.none(), lambda c: st.lists(c, max_size=3), max_leaves=5))
def test_non_objects_are_malformed(value: object) -> None:
    result = validate_event(value, now=NOW, future_tolerance=TOLERANCE)
    assert isinstance(result, Rejection)
    assert (result.field, result.category) == ("event", "malformed")


@settings(max_examples=50, deadline=None)
@given(st.lists(events(), max_size=5))
def test_ndjson_and_json_batches_decode_to_the_same_events(batch: list[dict[str, Any]]) -> None:
    ndjson = b"\n".join(orjson.dumps(e) for e in batch) + b"\n"
    assert decode_batch(ndjson, "application/x-ndjson") == batch
    assert decode_batch(orjson.dumps(batch), "application/json") == batch
