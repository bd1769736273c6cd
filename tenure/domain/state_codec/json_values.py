"""The JSON values of the state documents: scalars written and read back, and errors.

Every reader takes the value and ``where`` (the place in the document, for the error
message) and raises :class:`MalformedDocument` (a ``ValueError``) when the value does not
have the shape schema version 1 gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar

import orjson

from tenure.errors import TenureError

SCHEMA_VERSION: Final = 1
"""The schema version written in (and required of) every document as ``"v"``."""

DUMPS_OPTIONS: Final = orjson.OPT_SORT_KEYS

T = TypeVar("T")

Json = Any
"""A JSON value as produced by the standard decoders (dict, list, str, int, bool, None)."""


class MalformedDocument(TenureError, ValueError):
    """A document does not have the shape of schema version 1."""


def malformed(where: str, expected: str, got: Json) -> MalformedDocument:
    """The error for a value at ``where`` that is not what the schema expects."""
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return MalformedDocument(f"{where}: expected {expected}, got {shown}")


# --------------------------------------------------------------------------- scalars


def write_time(moment: datetime) -> str:
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


def canonical_bytes(value: Json) -> bytes:
    """Canonical bytes of a JSON value: the sort key of set elements and map keys."""
    return orjson.dumps(value, option=DUMPS_OPTIONS)


def sorted_list(values: Iterable[T], encode: Callable[[T], Json]) -> list[Json]:
    """The encoded values, sorted by their canonical bytes (a set's canonical form)."""
    return sorted((encode(v) for v in values), key=canonical_bytes)


def read_str(value: Json, where: str) -> str:
    """``value`` if it is a string."""
    if type(value) is not str:
        raise malformed(where, "a string", value)
    return value


def read_opt_str(value: Json, where: str) -> str | None:
    """``value`` if it is a string or null."""
    if value is None or type(value) is str:
        return value
    raise malformed(where, "a string", value)


def read_int(value: Json, where: str) -> int:
    """``value`` if it is an integer (not a boolean)."""
    if type(value) is not int:
        raise malformed(where, "an integer", value)
    return value


def read_bool(value: Json, where: str) -> bool:
    """``value`` if it is a boolean."""
    if type(value) is not bool:
        raise malformed(where, "a boolean", value)
    return value


def read_list(value: Json, where: str, length: int | None = None) -> list[Json]:
    """``value`` if it is a list (of ``length`` items, when given)."""
    if type(value) is not list or (length is not None and len(value) != length):
        raise malformed(where, "a list" if length is None else f"a list of {length}", value)
    return value


def read_object(value: Json, where: str, keys: frozenset[str] | None = None) -> Mapping[str, Json]:
    """``value`` if it is an object (with exactly ``keys``, when given)."""
    if not isinstance(value, Mapping):
        raise malformed(where, "an object", value)
    if keys is not None and value.keys() != keys:
        missing = sorted(keys - value.keys())
        extra = sorted(value.keys() - keys)
        raise MalformedDocument(f"{where}: missing keys {missing}, unexpected keys {extra}")
    return value


def read_time(value: Json, where: str) -> datetime:
    """The UTC time of an RFC 3339 string with an offset."""
    if type(value) is not str:
        raise malformed(where, "a string", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise malformed(where, "an RFC 3339 time", value) from None
    if parsed.tzinfo is UTC:  # what the encoder writes ("Z")
        return parsed
    if parsed.utcoffset() is None:
        raise malformed(where, "an RFC 3339 time with an offset", value)
    return parsed.astimezone(UTC)


def read_date(value: Json, where: str) -> date:
    """The date of an ISO date string."""
    if type(value) is not str:
        raise malformed(where, "a string", value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise malformed(where, "an ISO date", value) from None


def check_header(data: Json, kind: str) -> None:
    """Refuse anything but a schema-v1 document of ``kind``."""
    if not isinstance(data, Mapping):
        raise malformed(f"{kind} state", "a JSON object", data)
    version = data.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ValueError(
            f"unsupported {kind} state schema version {version!r} "
            f"(this build reads version {SCHEMA_VERSION} only)"
        )
    if data.get("kind") != kind:
        raise ValueError(f"not a {kind} state document (kind is {data.get('kind')!r})")


def dumps(document: dict[str, Any]) -> bytes:
    """Canonical bytes of a document (sorted keys, compact)."""
    return orjson.dumps(document, option=DUMPS_OPTIONS)


def loads(data: bytes | bytearray | memoryview | str, kind: str) -> dict[str, Any]:
    """The JSON object of encoded bytes (``MalformedDocument`` if not an object)."""
    document = orjson.loads(data)
    if not isinstance(document, dict):
        raise malformed(f"{kind} state", "a JSON object", document)
    return document
