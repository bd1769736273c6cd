"""A pool's sessions can yield inside Postgres: their server processes get a nice value."""

from __future__ import annotations

import os
from contextlib import ExitStack

from psycopg_pool import ConnectionPool

from tenure.runtime.database import database_pool_options


def _server_nices(pool: ConnectionPool, sessions: int) -> list[int]:
    """The nice value of each of ``sessions`` sessions' server processes (held at once)."""
    with ExitStack() as held:
        conns = [held.enter_context(pool.connection()) for _ in range(sessions)]
        pids = []
        for conn in conns:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            pids.append(int(row[0]))
        return [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids]


def test_a_pool_with_a_session_nice_lowers_its_own_sessions_and_no_other(
    database_url: str,
) -> None:
    lowered_options = database_pool_options(session_nice=7)
    with (
        ConnectionPool(database_url, min_size=0, max_size=2, **lowered_options) as lowered,
        ConnectionPool(database_url, min_size=0, max_size=2, **database_pool_options()) as equal,
    ):
        assert _server_nices(lowered, 2) == [7, 7]
        assert _server_nices(equal, 2) == [0, 0]
