"""How Tenure's processes reach Postgres so that a database outage is a wait, not a hang.

Connections are made with a short connect timeout and pools hand out connections within a
short time, so a request or a batch finds out in seconds that the database is away (a 503
for the HTTP services, a wait-and-retry for the workers) instead of hanging or failing
with a 500. Liveness never depends on the database; readiness does
(:func:`database_problem`, :func:`broker_problem`).
"""

from __future__ import annotations

import socket
import time
from functools import partial
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tenure.runtime.cpu_priority import lower_database_session

CONNECT_TIMEOUT_S = 3
"""libpq ``connect_timeout`` of every pooled connection (seconds, whole number)."""
POOL_TIMEOUT_S = 3.0
"""Longest wait for a pooled connection before the caller is told the database is away."""
RECONNECT_TIMEOUT_S = 5.0
"""How long a pool keeps re-trying one lost connection (with doubling delays) before it
gives that attempt up; the next request then connects at once. psycopg_pool's default (5
minutes, delays growing without bound) left services not-ready for up to ~16 s after a
Postgres restart that took one second. A caller already waiting when an attempt is given up
is not served by a new one, so the pool timeout (:data:`POOL_TIMEOUT_S`) must stay short
too: the caller then asks again, and that starts a new attempt."""
READY_TIMEOUT_S = 2.0
"""Longest a readiness check waits for the database or the broker."""


def database_pool_options(*, check: bool = False, session_nice: int = 0) -> dict[str, Any]:
    """Keyword arguments for :class:`ConnectionPool` with short timeouts.

    ``check``: test each connection before handing it out (one round trip), so the first
    request after a database restart does not get a dead connection. Request-serving pools
    use it; the workers' hot paths retry a failed batch instead. ``session_nice``: each new
    connection's server process gets this nice value when it runs on this machine
    (:func:`~tenure.runtime.cpu_priority.lower_database_session`; 0: unchanged).
    """
    options: dict[str, Any] = {
        "kwargs": {"connect_timeout": CONNECT_TIMEOUT_S},
        "timeout": POOL_TIMEOUT_S,
        "reconnect_timeout": RECONNECT_TIMEOUT_S,
    }
    if check:
        options["check"] = ConnectionPool.check_connection
    if session_nice:
        options["configure"] = partial(lower_database_session, nice=session_nice)
    return options


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def database_problem(pool: ConnectionPool, timeout_s: float = READY_TIMEOUT_S) -> str | None:
    """Why the database is not usable right now, or ``None`` when ``SELECT 1`` answers."""
    try:
        with pool.connection(timeout=timeout_s) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"database unavailable: {_first_line(exc)}"
    return None


def broker_problem(bootstrap: str, timeout_s: float = READY_TIMEOUT_S) -> str | None:
    """Why no bootstrap server of ``bootstrap`` accepts a TCP connection, or ``None``."""
    deadline = time.monotonic() + timeout_s
    failures: list[str] = []
    for server in (s.strip() for s in bootstrap.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=left):
                return None
        except (OSError, ValueError) as exc:
            failures.append(f"{server}: {_first_line(exc)}")
    return f"broker unavailable: {'; '.join(failures) or 'no bootstrap server answered'}"


class Backoff:
    """Growing waits between attempts while something is away: 0.5 s doubling to ``cap``."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 5.0) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next attempt (counts a failure)."""
        self.failures += 1
        return float(min(self.cap_s, self.first_s * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        """Start again from the shortest wait (after a success)."""
        self.failures = 0
