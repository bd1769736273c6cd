"""A derive stage in its own process is woken by the queue (migration 0024), on real Postgres.

- A committed transaction that queues keys wakes a waiting :class:`QueueListener`; keys
  queued while nobody waited wake the next wait.
- A rolled-back one does not, and neither does an insert of no rows (the time-driven queueing
  runs every tick and mostly finds nothing: it must not wake the stage it runs in).
- A listener whose connection was cut waits out the rest of its timeout, then listens again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from tenure.storage import derive_queue
from tenure.storage.derive_queue import QueueListener

WAIT_S = 30.0
"""A wait that must be woken (it fails the test only if nothing came in this long)."""
QUIET_S = 0.5
"""A wait that must not be woken."""


@pytest.fixture
def listener(database_url: str) -> Iterator[QueueListener]:
    listening = QueueListener(database_url)
    assert not listening.wait(0.01)  # connected and listening, nothing queued yet
    yield listening
    listening.close()


def _woken_by(listener: QueueListener, work: threading.Thread) -> bool:
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(listener.wait(WAIT_S)))
    waiter.start()
    work.start()
    work.join()
    waiter.join()
    return woken == [True]


def test_a_committed_batch_wakes_the_listener(database_url: str, listener: QueueListener) -> None:
    def apply_batch() -> None:
        with psycopg.connect(database_url) as conn, conn.transaction():
            derive_queue.queue_touched(conn, ["person-1"], [])

    assert _woken_by(listener, threading.Thread(target=apply_batch))
    assert not listener.wait(QUIET_S)  # one commit, one wake-up


def test_keys_queued_while_nobody_waited_wake_the_next_wait(
    database_url: str, listener: QueueListener
) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction():
        derive_queue.enqueue(conn, "device", ["device-1", "device-2"])
        derive_queue.enqueue(conn, "person", ["person-1"])
    assert listener.wait(WAIT_S)
    assert not listener.wait(QUIET_S)  # one transaction: Postgres folds its notifications


def test_rolled_back_and_empty_inserts_do_not_wake(
    database_url: str, listener: QueueListener
) -> None:
    with psycopg.connect(database_url) as conn:
        with conn.transaction(force_rollback=True):
            derive_queue.queue_touched(conn, ["person-1"], [])
        with conn.transaction():
            assert derive_queue.queue_due_persons(conn, datetime.now(UTC)) == 0
            derive_queue.enqueue(conn, "person", [])
    assert not listener.wait(QUIET_S)
    with psycopg.connect(database_url) as conn:
        assert derive_queue.backlog(conn) == (0, 0)


def test_a_cut_connection_is_made_again(database_url: str, listener: QueueListener) -> None:
    assert listener._conn is not None
    pid = listener._conn.info.backend_pid
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert not listener.wait(QUIET_S)  # the cut is met: no error, the wait just ends
    assert not listener.wait(0.01)  # listening again, on a new connection
    assert listener._conn is not None and listener._conn.info.backend_pid != pid
    with psycopg.connect(database_url) as conn, conn.transaction():
        derive_queue.enqueue(conn, "person", ["person-2"])
    assert listener.wait(WAIT_S)
