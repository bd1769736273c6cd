"""The one connection type of the storage seam, read-only snapshots, the conflict retry and
which database failures are transient.

Every module that talks to Postgres takes a :data:`Conn`. Readers that must see one
consistent state across several statements open :func:`read_only_snapshot`; writers whose
transaction Postgres aborts for a deadlock or a serialization failure run again through
:func:`retry_conflicts` (the statements are idempotent merges, so running again is safe).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

__all__ = [
    "CONFLICTS",
    "CONNECTION_LOST",
    "DATABASE_TRANSIENT",
    "DATABASE_UNAVAILABLE",
    "NO_CONNECTION",
    "Conn",
    "read_only_snapshot",
    "repeatable_read_transaction",
    "retry_conflicts",
]

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]
"""A Postgres connection (tuple rows unless a cursor asks for another row factory)."""

CONFLICTS: tuple[type[psycopg.Error], ...] = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)
"""Errors that abort a transaction because of another one; running it again succeeds."""

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (psycopg.OperationalError,)
"""What a call raises when the database cannot be reached or went away mid-call (a pool
timeout is one of them)."""

NO_CONNECTION: tuple[type[Exception], ...] = (PoolTimeout,)
"""A call that found no connection in its pool in time: no statement ran, so waiting for
the database is not work done (one kind of :data:`DATABASE_UNAVAILABLE`)."""

CONNECTION_LOST: tuple[type[Exception], ...] = (*DATABASE_UNAVAILABLE, psycopg.InterfaceError)
"""A connection that failed under a statement: the database away, or a connection it
closed (``InterfaceError``)."""

DATABASE_TRANSIENT: tuple[type[Exception], ...] = (*CONNECTION_LOST, *CONFLICTS)
"""Every database failure about the moment, not the data: a lost connection
(:data:`CONNECTION_LOST`) or a transaction aborted by another one (:data:`CONFLICTS`).
Running the same work again succeeds once the moment has passed; a worker waits these out
(:func:`tenure.eventlog.transient.until_transient_passes`)."""

T = TypeVar("T")


@contextmanager
def read_only_snapshot(conn: Conn, *, repeatable: bool = True) -> Iterator[Conn]:
    """A read-only transaction on ``conn``; with ``repeatable`` every statement in it sees
    the same snapshot (REPEATABLE READ), otherwise each its own (READ COMMITTED)."""
    with _transaction_as(conn, repeatable=repeatable, read_only=True):
        yield conn


@contextmanager
def repeatable_read_transaction(conn: Conn) -> Iterator[psycopg.Transaction]:
    """A REPEATABLE READ transaction on ``conn`` (its first statement takes the snapshot
    every later one sees); yields the transaction, for :class:`psycopg.Rollback`."""
    with _transaction_as(conn, repeatable=True, read_only=False) as tx:
        yield tx


@contextmanager
def _transaction_as(
    conn: Conn, *, repeatable: bool, read_only: bool
) -> Iterator[psycopg.Transaction]:
    # ``BEGIN ISOLATION LEVEL REPEATABLE READ [READ ONLY]``: one statement, where a ``SET
    # TRANSACTION`` after ``BEGIN`` is a round trip more. Set on the connection only for this
    # transaction (a pooled connection serves others); ``conn`` must not be in a transaction.
    level, only = conn.isolation_level, conn.read_only
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ if repeatable else None
    conn.read_only = read_only or None
    try:
        with conn.transaction() as tx:
            yield tx
    finally:
        if conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE:
            conn.isolation_level, conn.read_only = level, only  # a broken one is discarded


def retry_conflicts(
    work: Callable[[], T], *, tries: int = 10, backoff_s: float = 0.05, what: str = "work"
) -> T:
    """Run ``work``; after a deadlock or serialization failure wait ``backoff_s`` times the
    attempt number and run it again, at most ``tries`` times in all; then the last error
    propagates. Any other error propagates at once."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return work()
        except CONFLICTS as exc:
            if attempt >= tries:
                raise
            log.info("%s retrying after %s (attempt %d)", what, type(exc).__name__, attempt)
            time.sleep(backoff_s * attempt)
