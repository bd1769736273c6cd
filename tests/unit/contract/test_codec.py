from __future__ import annotations

import pytest

from tenure.contract import MalformedBody, UnsupportedContentType, decode_batch, decode_record


def test_json_array() -> None:
    assert decode_batch(b'[{"a": 1}, {"b": 2}]', "application/json") == [{"a": 1}, {"b": 2}]


def test_json_empty_array() -> None:
    assert decode_batch(b"[]", "application/json") == []


def test_json_single_object_is_a_batch_of_one() -> None:
    assert decode_batch(b'{"a": 1}', "application/json") == [{"a": 1}]


def test_content_type_parameters_and_case_are_ignored() -> None:
    assert decode_batch(b"[1]", "Application/JSON; charset=utf-8") == [1]
    assert decode_batch(b"1\n", " application/x-ndjson ;charset=utf-8") == [1]


def test_json_array_elements_are_not_validated_here() -> None:
    assert decode_batch(b'[{"a": 1}, 2, "x", null]', "application/json") == [{"a": 1}, 2, "x", None]


@pytest.mark.parametrize("body", [b"42", b'"event"', b"null", b"true"])
def test_json_scalar_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="JSON array of events or a single event object"):
        decode_batch(body, "application/json")


@pytest.mark.parametrize(
    "body", [b"", b"[", b'[{"a": 1},]', b"{'a': 1}", b"\xff\xfe", b'[{"a": NaN}]']
)
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="body is not valid JSON"):
        decode_batch(body, "application/json")


def test_ndjson_with_blank_lines() -> None:
    body = b'\n{"a": 1}\n\n  \n{"b": 2}\r\n{"c": 3}'
    assert decode_batch(body, "application/x-ndjson") == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_ndjson_empty_body() -> None:
    assert decode_batch(b"", "application/x-ndjson") == []
    assert decode_batch(b"\n\n", "application/x-ndjson") == []


def test_ndjson_error_names_the_line() -> None:
    body = b'{"a": 1}\n\n{"b": \n{"c": 3}\n'
    with pytest.raises(MalformedBody, match=r"^line 3 is not valid JSON"):
        decode_batch(body, "application/x-ndjson")


def test_ndjson_two_objects_on_one_line_is_malformed() -> None:
    with pytest.raises(MalformedBody, match=r"^line 1 "):
        decode_batch(b'{"a": 1} {"b": 2}\n', "application/x-ndjson")


def test_unsupported_content_type() -> None:
    with pytest.raises(UnsupportedContentType, match="unsupported content type 'text/plain'"):
        decode_batch(b"[]", "text/plain")


def test_unsupported_content_type_is_a_malformed_body() -> None:
    assert issubclass(UnsupportedContentType, MalformedBody)
    assert issubclass(MalformedBody, ValueError)


def test_decode_record() -> None:
    assert decode_record(b'{"a": [1, 2]}') == {"a": [1, 2]}


@pytest.mark.parametrize("value", [b"", b"{", b"\x00\x01"])
def test_decode_record_malformed(value: bytes) -> None:
    with pytest.raises(MalformedBody, match="record value is not valid JSON"):
        decode_record(value)
