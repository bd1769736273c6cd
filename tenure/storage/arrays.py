"""Postgres array parameters written as literals: one string per array.

psycopg adapts a list parameter element by element in Python; for the thousands of keys a
derive or aggregates pass sends (``unnest`` of several arrays) that adaptation cost more
than the statement. :func:`array_literal` builds the array's text form in one join and
the statement casts it (``%s::text[]``, ``%s::date[]``...): the same values reach the
server, parsed there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

__all__ = ["array_literal", "date_array", "int_array", "text_array"]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text_array(values: Iterable[str | None]) -> str:
    """A ``text[]`` literal of ``values`` (every element quoted; ``None`` is NULL)."""
    return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"


def int_array(values: Iterable[int]) -> str:
    """An integer array literal (``integer[]`` or ``bigint[]``)."""
    return "{" + ",".join(map(str, values)) + "}"


def date_array(values: Iterable[date]) -> str:
    """A ``date[]`` literal (ISO days)."""
    return "{" + ",".join(d.isoformat() for d in values) + "}"


def array_literal(values: Sequence[object], sql_type: str) -> str:
    """The literal of ``values`` for an array of ``sql_type`` (``text``, ``integer``,
    ``bigint`` or ``date``)."""
    if sql_type == "text":
        return text_array(values)  # type: ignore[arg-type]
    if sql_type in ("integer", "bigint"):
        return int_array(values)  # type: ignore[arg-type]
    if sql_type == "date":
        return date_array(values)  # type: ignore[arg-type]
    raise ValueError(f"no array literal for {sql_type}")
