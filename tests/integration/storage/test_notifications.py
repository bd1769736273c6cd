"""A stage in its own process is woken by Postgres notifications
(``tenure/storage/notifications.py``), on real Postgres.

The derive queue (migration 0024):

- A committed transaction that queues keys wakes a waiting :class:`ChannelListener`; keys
  queued while nobody waited wake the next wait.
- A rolled-back one does not, and neither does an insert of no rows (the time-driven queueing
  runs every tick and mostly finds nothing: it must not wake the stage it runs in).
- A listener whose connection was cut waits out the rest of its timeout, then listens again.

Persons changes (migration 0030): a committed insert, update or delete of ``persons`` rows
wakes the followers' listener; a rolled-back one, a statement that changed no row and a
queued key do not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from tenure.domain.person import PersonState
from tenure.domain.view import person_view_at
from tenure.storage import derive_queue
from tenure.storage.notifications import DERIVE_QUEUE, PERSONS_CHANGED, ChannelListener
from tenure.storage.postgres_store import postgres_store
from tenure.storage.read_models import stored_person_row
from tenure.storage.seam import PersonWrite

WAIT_S = 30.0
"""A wait that must be woken (it fails the test only if nothing came in this long)."""
QUIET_S = 0.5
"""A wait that must not be woken."""


@pytest.fixture
def listener(database_url: str) -> Iterator[ChannelListener]:
    listening = ChannelListener(database_url, DERIVE_QUEUE)
    assert not listening.wait(0.01)  # connected and listening, nothing queued yet
    yield listening
    listening.close()


def _woken_by(listener: ChannelListener, work: threading.Thread) -> bool:
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(listener.wait(WAIT_S)))
    waiter.start()
    work.start()
    work.join()
    waiter.join()
    return woken == [True]


def test_a_committed_batch_wakes_the_listener(database_url: str, listener: ChannelListener) -> None:
    def apply_batch() -> None:
        with psycopg.connect(database_url) as conn, conn.transaction():
            derive_queue.queue_touched(conn, ["person-1"], [])

    assert _woken_by(listener, threading.Thread(target=apply_batch))
    assert not listener.wait(QUIET_S)  # one commit, one wake-up


def test_keys_queued_while_nobody_waited_wake_the_next_wait(
    database_url: str, listener: ChannelListener
) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction():
        derive_queue.enqueue(conn, "device", ["device-1", "device-2"])
        derive_queue.enqueue(conn, "person", ["person-1"])
    assert listener.wait(WAIT_S)
    assert not listener.wait(QUIET_S)  # one transaction: Postgres folds its notifications


def test_rolled_back_and_empty_inserts_do_not_wake(
    database_url: str, listener: ChannelListener
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


def test_a_cut_connection_is_made_again(database_url: str, listener: ChannelListener) -> None:
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


@pytest.fixture
def persons_listener(database_url: str) -> Iterator[ChannelListener]:
    listening = ChannelListener(database_url, PERSONS_CHANGED)
    assert not listening.wait(0.01)
    yield listening
    listening.close()


def _write(database_url: str, statement: str, *, rollback: bool = False) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=rollback):
        conn.execute(statement)


def _add_person(database_url: str, person_id: str, *, rollback: bool = False) -> None:
    """A derived row of ``person_id`` written as a derive pass writes it."""
    view = person_view_at(PersonState(person_id), datetime(2026, 2, 1, tzinfo=UTC))
    row = (*stored_person_row(view, [], None), 1)
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=rollback):
        postgres_store(conn).read_models.write_persons([PersonWrite(person_id, (), row)])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE persons SET as_of = as_of + interval '1 day' WHERE person_id = 'person-1'",
        "DELETE FROM persons WHERE person_id = 'person-1'",
    ],
)
def test_a_committed_persons_change_wakes_the_followers(
    database_url: str, persons_listener: ChannelListener, statement: str
) -> None:
    _add_person(database_url, "person-1")
    assert persons_listener.wait(WAIT_S)  # the insert
    thread = threading.Thread(target=_write, args=(database_url, statement))
    assert _woken_by(persons_listener, thread)
    assert not persons_listener.wait(QUIET_S)


def test_no_persons_change_does_not_wake_the_followers(
    database_url: str, persons_listener: ChannelListener
) -> None:
    _add_person(database_url, "person-1", rollback=True)
    _write(database_url, "UPDATE persons SET as_of = now() WHERE person_id = 'nobody'")
    _write(database_url, "DELETE FROM persons WHERE person_id = 'nobody'")
    with psycopg.connect(database_url) as conn, conn.transaction():
        derive_queue.enqueue(conn, "person", ["person-1"])  # the derive queue's channel only
    assert not persons_listener.wait(QUIET_S)
