"""Postgres array parameters written as literals: one string per array.

psycopg adapts a list parameter element by element in Python; for the thousands of keys a
derive or aggregates pass sends (``unnest`` of several arrays) that adaptation cost more
than the statement. :func:`array_literal` builds the array's text form in one join and
the statement casts it (``%s::text[]``, ``%s::date[]``...): the same values reach the
server, parsed there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

__all__ = ["array_literal", "date_array", "int_array", "text_array", "with_array_literals"]


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


def with_array_literals(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], types: Mapping[str, str]
) -> Iterator[tuple[Any, ...]]:
    """``rows`` (values of ``columns``) with the value of each column named in ``types``
    (its element's SQL type, as :func:`array_literal` takes) replaced by its literal.

    For ``COPY``: psycopg adapts a list value element by element in Python, first scanning
    it for the element type, on every row; a literal is one string, parsed by the server
    into the column's array type (docs/design/derive-cost.md, "Session 27")."""
    at = [(i, types[c]) for i, c in enumerate(columns) if c in types]
    for row in rows:
        values = list(row)
        for i, sql_type in at:
            values[i] = array_literal(values[i], sql_type)
        yield tuple(values)
