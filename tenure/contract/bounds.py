"""Storability bounds of the event contract: what every stage downstream of ingest can store.

JSON Schema bounds each field of the contract (lengths, ranges); the rules here hold for every
value of an event, envelope, ``data`` and extensions alike, including values the schemas would
reject for other reasons, so that no later step (Postgres ``text``/``jsonb``, orjson, date
arithmetic) can fail on an event the validator passed:

- no string, value or field name, contains the NUL character U+0000 (Postgres refuses it);
- every number is finite and within the signed 64-bit range (orjson reads an integer beyond
  it as a float that JSON Schema still calls an integer, and cannot write it back as one);
- ``time`` lies in [:data:`EARLIEST_TIME`, :data:`LATEST_TIME`), far enough from the ends of
  Python's and Postgres' calendars that window arithmetic cannot overflow.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Final

INT64_MIN: Final = -(2**63)
"""The smallest number an event may carry."""
INT64_MAX: Final = 2**63 - 1
"""The largest number an event may carry."""
EARLIEST_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest event ``time`` accepted (inclusive)."""
LATEST_TIME: Final = datetime(9000, 1, 1, tzinfo=UTC)
"""The latest event ``time`` accepted (exclusive); the future-time tolerance is stricter."""
NUL: Final = "\x00"


def _escaped(name: str) -> str:
    return name.replace(NUL, "\\u0000")


def _path(prefix: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{prefix}[{part}]"
    return f"{prefix}.{_escaped(part)}" if prefix else _escaped(part)


def _number_problem(value: int | float) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if not INT64_MIN <= value <= INT64_MAX:
        return f"must be between {INT64_MIN} and {INT64_MAX} (a signed 64-bit integer)"
    return None


def unstorable(value: object) -> tuple[str, str] | None:
    """The first value of a decoded JSON document no stage could store: ``(field, reason)``.

    ``field`` is the dotted path (``id``, ``data.items[0].amount_minor``; ``event`` for the
    document itself). Returns ``None`` when every string is free of NUL and every number is
    finite and within the signed 64-bit range. Iterative, so any nesting depth is fine.
    """
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                return path or "event", "must not contain the NUL character (U+0000)"
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int | float):
            problem = _number_problem(node)
            if problem is not None:
                return path or "event", problem
        elif isinstance(node, dict):
            for key in node:
                if isinstance(key, str) and NUL in key:
                    return (
                        _path(path, key),
                        "is a field name with the NUL character (U+0000), which is not allowed",
                    )
            # Reversed, so that the first offending field in document order is reported.
            stack.extend((_path(path, k), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((_path(path, i), v) for i, v in reversed(list(enumerate(node))))
    return None


def time_problem(moment: datetime) -> str | None:
    """Why an aware event ``time`` is out of the storable range, or ``None`` if it is in it."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        return (
            f"is out of range: must be from {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} "
            f"up to (not including) {LATEST_TIME:%Y-%m-%dT%H:%M:%SZ}"
        )
    return None
