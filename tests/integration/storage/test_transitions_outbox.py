"""The transitions outbox followed from a position (``tenure/storage/transitions_outbox.py``,
migration 0031), on real Postgres.

- A transaction that took its xid before another one but commits after it is not passed
  over: the relay sees neither's transitions until the older one has ended, then both, in
  the order written.
- One relay at a time: while one holds the outbox, another gets nothing; one that took its
  snapshot before the other's move fails with a serialization error instead of publishing
  from the old position.
- Upgrading a database whose outbox had unpublished rows (``published_at IS NULL``) starts
  the relay just before the oldest of them: nothing unpublished is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from tenure.domain.transitions import Transition, transition_id
from tenure.runtime.postgres import EmbeddedPostgres
from tenure.storage import transitions_outbox
from tenure.storage.connection import repeatable_read_transaction
from tenure.storage.migrations import available_migrations, migrate
from tenure.storage.transitions_outbox import START, RelayPosition
from tests.integration.horizon import wait_for_the_horizon

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def _transition(person_id: str) -> Transition:
    return Transition(
        transition_id(person_id, "stage", "new", "active", AS_OF),
        person_id, "stage", "new", "active", AS_OF,
    )  # fmt: skip


def _relay_page(url: str, limit: int = 100) -> tuple[list[str], RelayPosition]:
    """One relay transaction, once every write so far is below the horizon: the person ids
    after the relay's position, and the position after them (moved, as the relay does once
    the broker acknowledged)."""
    wait_for_the_horizon(url)
    with psycopg.connect(url) as conn, repeatable_read_transaction(conn):
        position = transitions_outbox.claim_relay(conn)
        assert position is not None
        rows, moved = transitions_outbox.after(conn, position, limit)
        transitions_outbox.move_relay(conn, moved)
    return [r.person_id for r in rows], moved


def test_a_transaction_that_commits_late_is_not_passed_over(database_url: str) -> None:
    with psycopg.connect(database_url) as early, psycopg.connect(database_url) as late:
        transitions_outbox.add(early, [_transition("p-early")], AS_OF)  # takes its xid first
        transitions_outbox.add(late, [_transition("p-late")], AS_OF)
        late.commit()
        with psycopg.connect(database_url) as conn, repeatable_read_transaction(conn):
            position = transitions_outbox.claim_relay(conn)
            assert position == START
            assert transitions_outbox.after(conn, position, 100) == ([], START)  # early runs
        early.commit()
    seen, moved = _relay_page(database_url)
    assert seen == ["p-early", "p-late"]
    assert _relay_page(database_url) == ([], moved)


def test_one_relay_at_a_time_and_never_from_a_stale_position(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        transitions_outbox.add(conn, [_transition(f"p-{n}") for n in range(3)], AS_OF)
    wait_for_the_horizon(database_url)
    with psycopg.connect(database_url) as holder, psycopg.connect(database_url) as other:
        with repeatable_read_transaction(holder):
            assert transitions_outbox.claim_relay(holder) == START
            with repeatable_read_transaction(other):
                assert transitions_outbox.claim_relay(other) is None  # held: nothing taken
            rows, moved = transitions_outbox.after(holder, START, 2)
            assert [r.person_id for r in rows] == ["p-0", "p-1"]
            other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            other.execute("SELECT 1")  # its snapshot predates the holder's move
            transitions_outbox.move_relay(holder, moved)
        with pytest.raises(psycopg.errors.SerializationFailure):
            transitions_outbox.claim_relay(other)
        other.rollback()
    assert _relay_page(database_url)[0] == ["p-2"]


def test_upgrading_keeps_every_unpublished_transition(
    postgres_server: EmbeddedPostgres,
) -> None:
    name = "outbox_upgrade"
    with psycopg.connect(postgres_server.url_for("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.url_for(name)
    with psycopg.connect(url, autocommit=True) as conn:  # the schema before migration 0031
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in available_migrations():
            if m.version < 31:
                conn.execute(m.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (m.version, m.name, m.checksum),
                )
        for n, published in enumerate([True, True, False, True, False]):
            t = _transition(f"p-{n}")
            conn.execute(
                "INSERT INTO lifecycle_transitions (transition_id, person_id, kind, old_value,"
                " new_value, effective_at, as_of, published_at) VALUES (%s, %s, %s, %s, %s,"
                " %s, %s, %s)",
                (t.id, t.person_id, t.kind, t.old, t.new, t.at, AS_OF,
                 AS_OF if published else None),
            )  # fmt: skip
        assert [m.version for m in migrate(conn)] == [31]
    # From the oldest unpublished on; p-3 was published already and goes out again (same id).
    assert _relay_page(url)[0] == ["p-2", "p-3", "p-4"]
