"""The CloudEvents content modes of the HTTP and Kafka protocol bindings, decoded."""

from __future__ import annotations

import orjson
import pytest
from starlette.datastructures import Headers

from tenure.contract import (
    MalformedBody,
    decode_batch,
    decode_batched,
    decode_http,
    decode_kafka_record,
    decode_structured,
)
from tests.factories import make_event

EVENT = make_event("device.used", event_id="e-1", source="urn:tenure:test")


def test_structured_mode_is_one_event() -> None:
    body = orjson.dumps(EVENT)
    assert decode_structured(body) == [EVENT]
    assert decode_batch(body, "application/cloudevents+json; charset=utf-8") == [EVENT]


def test_structured_mode_refuses_an_array_and_names_the_batched_type() -> None:
    with pytest.raises(MalformedBody, match="cloudevents-batch"):
        decode_batch(orjson.dumps([EVENT]), "application/cloudevents+json")
    with pytest.raises(MalformedBody, match="not valid JSON"):
        decode_structured(b"{")


def test_batched_mode_is_an_array_of_events() -> None:
    body = orjson.dumps([EVENT, EVENT])
    assert decode_batched(body) == [EVENT, EVENT]
    assert decode_batch(body, "Application/CloudEvents-Batch+JSON") == [EVENT, EVENT]
    with pytest.raises(MalformedBody, match="JSON array"):
        decode_batched(orjson.dumps(EVENT))


def _binary_headers(content_type: str = "application/json") -> Headers:
    attributes = {f"ce-{k}": str(v) for k, v in EVENT.items() if k != "data"}
    return Headers({**attributes, "content-type": content_type})


def test_http_binary_mode_takes_attributes_from_headers_and_data_from_the_body() -> None:
    body = orjson.dumps(EVENT["data"])
    decoded = decode_http(body, _binary_headers("application/json; charset=utf-8"))
    assert decoded == [{**EVENT, "datacontenttype": "application/json"}]


def test_http_binary_mode_wins_over_the_content_type_and_percent_decodes() -> None:
    headers = Headers(
        {
            **_binary_headers(),
            "ce-subject": "caf%C3%A9 %22x%22",
            "ce-source": "urn:tenure:test",
        }
    )
    (decoded,) = decode_http(orjson.dumps(EVENT["data"]), headers)
    assert isinstance(decoded, dict)
    assert decoded["subject"] == 'café "x"' and decoded["data"] == EVENT["data"]


def test_http_binary_mode_keeps_a_non_json_body_as_text_for_the_validator() -> None:
    (decoded,) = decode_http(b"hello", _binary_headers("text/plain"))
    assert isinstance(decoded, dict)
    assert decoded["data"] == "hello" and decoded["datacontenttype"] == "text/plain"


def test_http_binary_mode_with_invalid_json_data_is_malformed() -> None:
    with pytest.raises(MalformedBody, match="data of a binary-mode event"):
        decode_http(b"{", _binary_headers())


def test_http_without_ce_headers_goes_by_content_type() -> None:
    body = orjson.dumps([EVENT])
    assert decode_http(body, Headers({"content-type": "application/json"})) == [EVENT]


def test_kafka_structured_and_binary_records_decode_to_the_same_event() -> None:
    structured = decode_kafka_record(
        orjson.dumps(EVENT), [("content-type", b"application/cloudevents+json; charset=utf-8")]
    )
    assert structured == EVENT
    headers = [(f"ce_{k}", str(v).encode()) for k, v in EVENT.items() if k != "data"]
    binary = decode_kafka_record(
        orjson.dumps(EVENT["data"]), [*headers, ("content-type", b"application/json")]
    )
    assert binary == {**EVENT, "datacontenttype": "application/json"}


def test_kafka_record_without_headers_is_structured() -> None:
    assert decode_kafka_record(orjson.dumps(EVENT), []) == EVENT


def test_http_binary_mode_reads_raw_utf8_header_bytes_as_utf8() -> None:
    latin1_view = "café".encode().decode("latin-1")  # how the server hands the bytes over
    headers = Headers({**_binary_headers(), "ce-subject": latin1_view})
    (decoded,) = decode_http(orjson.dumps(EVENT["data"]), headers)
    assert isinstance(decoded, dict) and decoded["subject"] == "café"
