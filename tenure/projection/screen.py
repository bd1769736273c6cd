"""Screening a decoded event for values the projection cannot store.

The raw-state codec writes integers as JSON numbers within the signed 64-bit range and
Postgres text cannot hold NUL, so an event carrying such a value can never be applied.
The live apply stage finds such events by isolating a failing batch; the archive catch-up
and ``tenure replay`` screen each event first with :func:`unstorable` (a walk over the
event's fields, a few microseconds), so the poison event, not the person, is dead-lettered.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from tenure.domain.events import DomainEvent
from tenure.eventlog.isolation import Unprocessable

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _problem(value: Any, where: str) -> Unprocessable | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return Unprocessable("out_of_range", f"{where} is outside the 64-bit range", where)
        return None
    if isinstance(value, str):
        if "\x00" in value:
            return Unprocessable("invalid_data", f"{where} contains NUL", where)
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return Unprocessable("out_of_range", f"{where} is not a finite number", where)
        return None
    if isinstance(value, tuple):
        for n, item in enumerate(value):
            found = _problem(item, f"{where}[{n}]")
            if found is not None:
                return found
        return None
    if is_dataclass(value):
        for f in fields(value):
            found = _problem(getattr(value, f.name), f"{where}.{f.name}" if where else f.name)
            if found is not None:
                return found
    return None


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""The field names of each dataclass met (``dataclasses.fields`` costs more than the walk)."""


def _clean(value: Any) -> bool:
    """Whether :func:`_problem` finds nothing in ``value`` (the same walk, without building
    the paths it reports)."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, tuple):
        return all(_clean(item) for item in value)
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not is_dataclass(value):
            return True
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    return all(_clean(getattr(value, name)) for name in names)


def unstorable(event: DomainEvent) -> Unprocessable | None:
    """Why ``event`` cannot be stored by the projection (``None`` when it can)."""
    return None if _clean(event) else _problem(event, "")
