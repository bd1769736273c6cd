"""Postgres: transactions that begin with their isolation (``tenure/storage/connection.py``)."""

from __future__ import annotations

import psycopg
import pytest

from tenure.storage.connection import read_only_snapshot, repeatable_read_transaction


def _settings(conn: psycopg.Connection) -> tuple[str, str]:
    row = conn.execute(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def test_each_transaction_begins_as_asked_and_the_connection_is_left_as_it_was(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with repeatable_read_transaction(conn):
            assert _settings(conn) == ("repeatable read", "off")
        with read_only_snapshot(conn):
            assert _settings(conn) == ("repeatable read", "on")
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), conn.transaction():
                conn.execute("CREATE TABLE nope (x int)")
        with read_only_snapshot(conn, repeatable=False):
            assert _settings(conn) == ("read committed", "on")
        assert (conn.isolation_level, conn.read_only) == (None, None)
        with conn.transaction():  # a pooled connection's next user gets the defaults
            assert _settings(conn) == ("read committed", "off")


def test_a_failed_transaction_leaves_the_connection_as_it_was(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero), repeatable_read_transaction(conn):
            conn.execute("SELECT 1 / 0")
        assert (conn.isolation_level, conn.read_only) == (None, None)
