"""Upserting many rows in one statement: ``COPY`` into a session staging copy of the table,
then one ``INSERT ... SELECT ... ON CONFLICT`` that empties the copy as the rows move.

The staging copy (``<table>_incoming``, ``LIKE`` the table, ``ON COMMIT DELETE ROWS``) is
created the first time a session needs it. ``COPY`` sends the rows in the client's text
format, whatever their types (arrays of arrays, JSON), which parameter arrays cannot.
The read models' forward-only writes (:mod:`tenure.storage.read_model_rows`) and the survival
contributions (:mod:`tenure.storage.survival_aggregates`) use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from tenure.storage.connection import Conn

__all__ = ["staged_upsert"]


def staged_upsert(
    conn: Conn,
    table: str,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    guard: sql.Composable | None = None,
) -> list[str]:
    """Insert ``rows`` (values of ``columns``, ``key`` among them) into ``table``, or update
    the stored row of the same ``key`` where ``guard`` holds (an SQL condition on ``table``
    and ``EXCLUDED``; ``None``: always); return the keys inserted or updated.

    The same three statements whatever the number of rows (the staging copy created if
    missing, ``COPY``, ``INSERT``); the copy is empty afterwards, so it may be called again
    in the same transaction.
    """
    if not rows:
        return []
    staging = sql.Identifier(f"{table}_incoming")
    target = sql.Identifier(table)
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
            staging, target
        )
    )
    with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, names)) as copy:
        for row in rows:
            copy.write_row(row)
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns if c != key
    )
    condition = sql.SQL("") if guard is None else sql.SQL(" WHERE ") + guard
    moved = conn.execute(
        sql.SQL(
            "WITH staged AS (DELETE FROM {s} RETURNING {cols})"
            " INSERT INTO {t} ({cols}) SELECT {cols} FROM staged ON CONFLICT ({k}) DO UPDATE"
            " SET {u}{g} RETURNING {k}"
        ).format(s=staging, t=target, cols=names, k=sql.Identifier(key), u=updates, g=condition)
    ).fetchall()
    return [str(r[0]) for r in moved]
