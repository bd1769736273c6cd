"""Postgres: upserting through a session staging copy (``tenure/storage/staged_upsert.py``)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tenure.storage.staged_upsert import staged_upsert

COLUMNS = ("k", "n", "tags")


def _rows(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT k, n, tags FROM things ORDER BY k").fetchall()


def test_rows_insert_update_where_the_guard_holds_and_the_copy_is_left_empty(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("CREATE TABLE things (k text PRIMARY KEY, n int NOT NULL, tags text[])")
        first = [("a", 1, ["x", "y"]), ("b", 5, []), ("c", 2, None)]
        assert sorted(staged_upsert(conn, "things", "k", COLUMNS, first)) == ["a", "b", "c"]
        forward = sql.SQL("things.n <= EXCLUDED.n")
        # called again in the same transaction: the staging copy holds nothing from before
        moved = staged_upsert(
            conn, "things", "k", COLUMNS, [("a", 3, ["z"]), ("b", 4, ["w"]), ("d", 0, [])], forward
        )
        assert sorted(moved) == ["a", "d"]  # b's stored n (5) is ahead: left as it was
        assert _rows(conn) == [
            ("a", 3, ["z"]),
            ("b", 5, []),
            ("c", 2, None),
            ("d", 0, []),
        ]
        assert conn.execute("SELECT count(*) FROM things_incoming").fetchone() == (0,)
        assert staged_upsert(conn, "things", "k", COLUMNS, [], forward) == []
