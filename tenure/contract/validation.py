"""Validate one decoded JSON value against the event contract v1.

The rules live in the JSON Schemas under ``schemas/events/v1``; this module compiles them once
(one validator for the envelope, one for the ``data`` of each type) and turns the first error
into a :class:`Rejection`. The only rules checked in code are those JSON Schema cannot
express: ``time`` must be a real RFC 3339 instant with an offset, in the storable range and not
too far in the future, all items of a ``payment.completed`` must share one currency, and the
storability bounds of :mod:`tenure.contract.bounds` (no NUL in any string, every number within
the signed 64-bit range) hold for every value of the event.

Which error is reported when there are several: storability first (whatever the value), then
the envelope, then ``time``, then ``data``, then the cross-field checks, then the future-time
check. Within one schema, errors
are ordered by kind (missing required field, wrong JSON type, wrong constant/enum value, other
constraints, unknown field), then by depth (shallow first), then by field path.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from schemas import SCHEMA_DIR, event_schema_path
from tenure.contract.bounds import time_problem, unstorable
from tenure.contract.envelope import CORE_ATTRIBUTES, CloudEvent
from tenure.contract.topics import EVENT_TYPES

MALFORMED: Final = "malformed"
"""The value is not a JSON object at all."""
ENVELOPE: Final = "envelope"
"""A CloudEvents attribute is missing or wrong (including an impossible ``time``)."""
UNKNOWN_TYPE: Final = "unknown_type"
"""``type`` is a string but not one of the contract's event types."""
SCHEMA: Final = "schema"
"""``data`` does not match the schema of its type (or a cross-field rule of it)."""
FUTURE_TIME: Final = "future_time"
"""``time`` is further in the future than the tolerance allows."""
CATEGORIES: Final[tuple[str, ...]] = (MALFORMED, ENVELOPE, UNKNOWN_TYPE, SCHEMA, FUTURE_TIME)
"""Every rejection category: a small fixed set, usable as a metrics label."""

CONTRACT_VERSION: Final = "v1"
DEFAULT_FUTURE_TOLERANCE: Final = timedelta(seconds=300)
"""Default of ``future_tolerance`` (the ingest service reads ``TENURE_FUTURE_TOLERANCE_S``)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was refused.

    ``field`` is a dotted path such as ``time``, ``data.device_id`` or
    ``data.items[0].amount_minor`` (``event`` for the value as a whole); ``reason`` is a
    human sentence; ``category`` is one of :data:`CATEGORIES`.
    """

    field: str
    reason: str
    category: str


# --- compiled schemas -------------------------------------------------------------------------

_FastCheck = Callable[[object], bool]


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _ecma_pattern(
    validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The ``pattern`` keyword with ECMA 262's ``$`` (end of input only), as JSON Schema wants.

    Python's ``$`` also matches before a final newline, so plain jsonschema would accept
    ``"EUR\\n"`` for ``^[A-Z]{3}$`` where every other JSON Schema implementation refuses it.
    """
    if not isinstance(instance, str):
        return
    match = _regex(pattern).search(instance)
    if match is None or (
        pattern.endswith("$") and instance.endswith("\n") and match.end() == len(instance) - 1
    ):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator: Any = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@dataclass(frozen=True, slots=True)
class _Compiled:
    """Validators compiled from the schema files of one contract version.

    ``envelope``/``data`` (jsonschema) are the reference: they produce the error details.
    ``fast_envelope``/``fast_data`` are optional ``is_valid`` checks compiled from the same files
    by ``jsonschema_rs`` when that package is installed; a valid event then never touches the
    (much slower) pure-Python validator.
    """

    envelope: Draft202012Validator
    data: Mapping[str, Draft202012Validator]
    fast_envelope: _FastCheck | None
    fast_data: Mapping[str, _FastCheck]


def _load_documents(version: str) -> dict[str, Any]:
    """Read every schema file of ``version``, keyed by its stem (``envelope``, ``device.used``)."""
    folder = SCHEMA_DIR / "events" / version
    missing = [t for t in (*EVENT_TYPES, "envelope") if not event_schema_path(t, version).exists()]
    if missing:
        raise FileNotFoundError(f"no schema for {missing} in {folder}")
    documents: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(contents)
        documents[path.stem] = contents
    return documents


def _targets(documents: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The schemas to compile: the envelope, and the ``$defs/data`` of each event type."""
    targets = {"envelope": {"$ref": documents["envelope"]["$id"]}}
    for event_type in EVENT_TYPES:
        targets[event_type] = {"$ref": f"{documents[event_type]['$id']}#/$defs/data"}
    return targets


def _fast_checks(documents: Mapping[str, Any]) -> dict[str, _FastCheck]:
    """Compile ``is_valid`` checks with ``jsonschema_rs`` if installed, else return ``{}``."""
    try:
        rs: Any = importlib.import_module("jsonschema_rs")
    except ImportError:
        return {}
    registry = rs.Registry([(doc["$id"], doc) for doc in documents.values()])
    return {
        name: rs.Draft202012Validator(target, registry=registry).is_valid
        for name, target in _targets(documents).items()
    }


@cache
def _compiled(version: str = CONTRACT_VERSION) -> _Compiled:
    documents = _load_documents(version)
    # Registered without "$schema": jsonschema picks the validator class of a referenced
    # resource from its "$schema", which would bypass the ECMA ``pattern`` of _Validator.
    registry: Registry[Any] = Registry().with_resources(
        (doc["$id"], DRAFT202012.create_resource({k: v for k, v in doc.items() if k != "$schema"}))
        for doc in documents.values()
    )
    validators = {
        name: _Validator(target, registry=registry) for name, target in _targets(documents).items()
    }
    fast = _fast_checks(documents)
    return _Compiled(
        envelope=validators.pop("envelope"),
        data=validators,
        fast_envelope=fast.pop("envelope", None),
        fast_data=fast,
    )


def warm_up() -> None:
    """Load and compile the schemas now instead of on the first :func:`validate_event` call."""
    _compiled()


def accelerated() -> bool:
    """Tell whether valid events are checked by ``jsonschema_rs`` (installed) or jsonschema."""
    return _compiled().fast_envelope is not None


# --- turning jsonschema errors into one Rejection ---------------------------------------------

_RANK: Final[dict[str, int]] = {"required": 0, "type": 1, "const": 2, "enum": 2}
_RANK_OTHER: Final = 3
_RANK_UNKNOWN_FIELD: Final = 4
_JSON_TYPE_NAMES: Final[dict[str, str]] = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}

_SortKey = tuple[int, int, str]


def _path(prefix: str, parts: Iterable[str | int]) -> str:
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else part
    return out


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def _one_of(names: Iterable[str]) -> str:
    listed = [_JSON_TYPE_NAMES.get(name, name) for name in names]
    if len(listed) == 1:
        return listed[0]
    return ", ".join(listed[:-1]) + " or " + listed[-1]


def _reason(error: ValidationError) -> str:
    keyword = error.validator
    value = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "type":
        names = [value] if isinstance(value, str) else list(value)
        return f"must be {_one_of(names)}, not {_json_kind(error.instance)}"
    if keyword in ("minLength", "minItems") and value == 1:
        return "must not be empty"
    if keyword == "maxLength" and schema.get("minLength") != value:
        # A length limit is reported as such; a fixed length (a code such as a currency) is
        # described by the field's errorMessage below.
        return f"must be at most {value} characters long"
    custom = schema.get("errorMessage")
    if isinstance(custom, str):
        return custom
    if keyword == "const":
        return f"must be {json.dumps(value)}"
    if keyword == "enum":
        return "must be one of: " + ", ".join(str(v) for v in value)
    if keyword == "minLength":
        return f"must be at least {value} characters long"
    if keyword == "maxLength":
        return f"must be at most {value} characters long"
    if keyword in ("minimum", "maximum"):
        return f"must be {'at least' if keyword == 'minimum' else 'at most'} {value}"
    if keyword == "minItems":
        return f"must have at least {value} items"
    if keyword == "pattern":
        return f"must match the pattern {value}"
    return str(error.message)


def _candidates(error: ValidationError, prefix: str) -> Iterator[tuple[_SortKey, str, str]]:
    """Yield ``(sort key, field, reason)`` for each offending field ``error`` stands for."""
    parts = list(error.absolute_path)
    keyword = error.validator
    if keyword == "required" and isinstance(error.instance, dict):
        for name in error.validator_value:
            if name not in error.instance:
                field = _path(prefix, [*parts, name])
                yield (_RANK["required"], len(parts) + 1, field), field, "required field is missing"
        return
    if keyword == "additionalProperties" and error.validator_value is False:
        allowed = list(error.schema.get("properties", {}))
        for name in error.instance:
            if name not in allowed:
                field = _path(prefix, [*parts, name])
                reason = "is not an allowed field; allowed fields: " + ", ".join(allowed)
                yield (_RANK_UNKNOWN_FIELD, len(parts) + 1, field), field, reason
        return
    if "propertyNames" in error.relative_schema_path:
        field = _path(prefix, [*parts, str(error.instance)])
        yield (_RANK_UNKNOWN_FIELD, len(parts) + 1, field), field, _reason(error)
        return
    field = _path(prefix, parts) or "event"
    yield (_RANK.get(str(keyword), _RANK_OTHER), len(parts), field), field, _reason(error)


def _first_error(errors: Iterable[ValidationError], prefix: str) -> tuple[str, str, str] | None:
    """Pick the most useful error: ``(field, reason, keyword)`` or ``None`` if valid."""
    best: tuple[_SortKey, str, str, str] | None = None
    for error in errors:
        for key, field, reason in _candidates(error, prefix):
            if best is None or key < best[0]:
                best = (key, field, reason, str(error.validator))
    return None if best is None else (best[1], best[2], best[3])


def _schema_error(
    validator: Draft202012Validator, fast: _FastCheck | None, instance: object, prefix: str
) -> tuple[str, str, str] | None:
    """Return the first error of ``instance`` (see :func:`_first_error`), or ``None``."""
    if fast is not None and fast(instance):
        return None
    found = _first_error(validator.iter_errors(instance), prefix)
    if found is None and fast is not None:
        # The two engines disagree (should not happen: report it rather than accept).
        return (prefix or "event", "does not match the contract's JSON Schema", "unknown")
    return found


# --- checks JSON Schema cannot express --------------------------------------------------------


def _parse_time(text: str) -> datetime | str:
    """Parse an RFC 3339 timestamp (format already checked by the schema) or explain why not."""
    normalised = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        moment = datetime.fromisoformat(normalised)
    except ValueError as exc:
        return f"is not a valid RFC 3339 date and time ({exc})"
    if moment.utcoffset() is None:
        return "must carry a timezone offset, e.g. 2024-05-01T12:00:00Z"
    return time_problem(moment) or moment


def _one_currency(data: dict[str, Any]) -> Rejection | None:
    items = data["items"]
    first = items[0]["currency"]
    for index, item in enumerate(items):
        if item["currency"] != first:
            return Rejection(
                f"data.items[{index}].currency",
                f"is {item['currency']} but data.items[0].currency is {first}; "
                "all items of one order must share one currency",
                SCHEMA,
            )
    return None


_CROSS_FIELD_CHECKS: Final[dict[str, Callable[[dict[str, Any]], Rejection | None]]] = {
    "payment.completed": _one_currency,
}


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.3f}".rstrip("0").rstrip(".")


# --- the entry point --------------------------------------------------------------------------


def validate_event(
    obj: object, *, now: datetime, future_tolerance: timedelta
) -> CloudEvent | Rejection:
    """Validate one decoded event against contract v1.

    Returns the :class:`CloudEvent` if ``obj`` is a valid event whose ``time`` is at most
    ``future_tolerance`` after ``now`` (old events are accepted: devices sync late), otherwise
    the single most useful :class:`Rejection`. ``now`` must be timezone-aware. The returned
    event shares its ``data`` dict with ``obj``.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(obj, dict):
        return Rejection("event", f"must be a JSON object, not {_json_kind(obj)}", MALFORMED)
    compiled = _compiled()

    bad_value = unstorable(obj)
    if bad_value is not None:
        field, reason = bad_value
        in_data = field == "data" or field.startswith(("data.", "data["))
        return Rejection(field, reason, SCHEMA if in_data else ENVELOPE)

    found = _schema_error(compiled.envelope, compiled.fast_envelope, obj, "")
    if found is not None:
        field, reason, keyword = found
        if field == "type" and keyword == "enum":
            return Rejection("type", f"is not a known event type: {obj['type']}", UNKNOWN_TYPE)
        return Rejection(field, reason, ENVELOPE)

    moment = _parse_time(obj["time"])
    if isinstance(moment, str):
        return Rejection("time", moment, ENVELOPE)

    event_type: str = obj["type"]
    data: dict[str, Any] = obj["data"]
    found = _schema_error(
        compiled.data[event_type], compiled.fast_data.get(event_type), data, "data"
    )
    if found is not None:
        return Rejection(found[0], found[1], SCHEMA)
    cross_check = _CROSS_FIELD_CHECKS.get(event_type)
    if cross_check is not None:
        rejected = cross_check(data)
        if rejected is not None:
            return rejected

    ahead = moment - now
    if ahead > future_tolerance:
        return Rejection(
            "time",
            f"is {_seconds(ahead)} s in the future; the tolerance is "
            f"{_seconds(future_tolerance)} s",
            FUTURE_TIME,
        )
    return CloudEvent(
        source=obj["source"],
        id=obj["id"],
        type=event_type,
        time=moment,
        subject=obj.get("subject"),
        data=data,
        extensions={k: v for k, v in obj.items() if k not in CORE_ATTRIBUTES},
    )
