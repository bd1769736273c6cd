"""A pool's sessions can yield inside Postgres: their server processes get a nice value."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import ExitStack

import psycopg
from psycopg_pool import ConnectionPool

from tenure.runtime.cpu_priority import is_local_backend, process_started_at
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


def test_a_local_postgres_process_that_started_at_another_time_is_not_the_session(
    database_url: str,
) -> None:
    """A pid is only this session's server process when it also started when the server says
    the session did: a local ``postgres`` with the same pid of another server is left alone."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT pid, extract(epoch FROM backend_start)::float8 FROM pg_stat_activity"
            " WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row is not None
        pid, backend_start = int(row[0]), float(row[1])
        assert is_local_backend(pid, backend_start)
        assert not is_local_backend(pid, backend_start - 3600)
        assert not is_local_backend(os.getpid(), time.time())  # not a postgres process


def test_a_process_start_time_is_read_from_proc() -> None:
    before = time.time()
    child = subprocess.Popen(["sleep", "5"])
    try:
        started = process_started_at(child.pid)
    finally:
        child.kill()
        child.wait()
    assert before - 1.0 <= started <= time.time() + 1.0
