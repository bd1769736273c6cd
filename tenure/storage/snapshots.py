"""Sharing one database snapshot between sessions (``pg_export_snapshot``).

A process that splits a read over several sessions (``tenure replay``'s workers) exports the
snapshot of its repeatable read transaction; each other session imports it as the first
statement of its own, so every session sees exactly the same rows.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

Conn = psycopg.Connection[Any]


def export(conn: Conn) -> str:
    """The id of the snapshot of ``conn``'s open repeatable read transaction (valid while that
    transaction stays open)."""
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


def use(conn: Conn, snapshot: str) -> None:
    """Make ``conn``'s just-begun repeatable read transaction see ``snapshot`` (must be its
    first statement)."""
    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
