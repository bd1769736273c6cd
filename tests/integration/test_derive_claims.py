"""Claims on the queues of marks (``derive_queue.claim_oldest``) on real Postgres: a key one
pass holds is never claimed by another pass until the first one ends.

Marks are numbered (``seq``) when inserted but seen when their batch commits. With the first
mark of each key locked ``FOR UPDATE SKIP LOCKED``, a batch that had numbered its mark before
a pass claimed the key, and committed after, gave the key an older, unlocked first mark: a
second pass claimed the key too, and one of the two failed its persons upsert with a
serialization error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from tenure.domain.events import DeviceActivated, DeviceUsed, DomainEvent, IdentityLinked
from tenure.domain.person import PersonState
from tenure.domain.view import DEFAULT_CONFIG, person_view_at
from tenure.projection.apply import apply_events
from tenure.projection.derive import DeriveResult, derive_claimed, derive_pass
from tenure.storage import derive_queue
from tenure.storage.connection import repeatable_read_transaction
from tenure.storage.notifications import DERIVE_QUEUE
from tenure.storage.postgres_store import postgres_store
from tenure.storage.read_models import stored_person_row
from tenure.storage.seam import PersonWrite


@pytest.mark.parametrize("kind", ["person", "device"])
def test_a_key_held_by_one_pass_is_not_claimed_by_another(
    database_url: str, kind: derive_queue.Kind
) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as producer,
        psycopg.connect(database_url) as slow_batch,
        psycopg.connect(database_url) as first,
        psycopg.connect(database_url) as second,
    ):
        second.execute("SET lock_timeout = '5s'")  # waiting for ``first`` fails the test
        derive_queue.enqueue(slow_batch, kind, ["k1"])  # numbered first, committed last
        derive_queue.enqueue(producer, kind, ["k1", "k2", "k3"])
        assert derive_queue.claim(first, kind, 1) == ["k1"]  # held, not yet committed
        slow_batch.commit()  # k1's oldest mark becomes visible, not locked by ``first``
        assert derive_queue.claim(second, kind, 10) == ["k2", "k3"]
        second.commit()
        # A pass isolating keys one by one (``claim_keys``) leaves a held key to its holder.
        derive_queue.enqueue(producer, kind, ["k2"])
        assert derive_queue.claim_keys(second, kind, ["k1", "k2"]) == ["k2"]
        second.commit()
        first.commit()
        with psycopg.connect(database_url) as third:
            assert derive_queue.claim(third, kind, 10) == ["k1"]  # its remaining mark


def test_a_claim_holds_no_more_keys_than_it_claims(database_url: str) -> None:
    """Key locks are tried in queue order only until the limit is reached: the keys behind
    the claimed ones stay free for the next pass."""
    with (
        psycopg.connect(database_url, autocommit=True) as producer,
        psycopg.connect(database_url) as first,
        psycopg.connect(database_url) as second,
    ):
        derive_queue.enqueue(producer, "person", ["a", "b", "c", "d"])
        assert derive_queue.claim(first, "person", 2) == ["a", "b"]
        assert derive_queue.claim(second, "person", 2) == ["c", "d"]
        first.commit()
        second.commit()
        assert derive_queue.oldest(producer, "person", 10) == []


def test_a_claim_looks_past_every_key_another_pass_holds(database_url: str) -> None:
    """A large pass holds more keys than a small pass's first head holds marks: the small
    pass still claims the oldest free keys behind them (it claimed none before: a second
    worker's 64-key deriver behind the first worker's 500-key passes, session 28)."""
    keys = [f"k{i:04d}" for i in range(700)]
    with (
        psycopg.connect(database_url, autocommit=True) as producer,
        psycopg.connect(database_url) as large,
        psycopg.connect(database_url) as small,
    ):
        derive_queue.enqueue(producer, "person", keys[:600])
        derive_queue.enqueue(producer, "person", keys)  # a second mark for the first 600
        assert derive_queue.claim(large, "person", 500) == keys[:500]  # held, not committed
        assert 64 * derive_queue.HEAD_FACTOR < 500  # the small pass's first head: all held
        assert derive_queue.claim(small, "person", 64) == keys[500:564]
        assert derive_queue.claim(small, "person", 200) == keys[564:700]  # the queue's end
        small.commit()
        large.commit()
        assert derive_queue.oldest(producer, "person", 10) == []


def test_a_human_one_pass_derives_is_not_held_by_another(database_url: str) -> None:
    """Two passes can claim two ids of one human (linked ids are different keys); the
    second one to hold the human leaves it (its ids are queued again) instead of writing
    the same persons row and failing with a serialization error."""
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        assert derive_queue.hold_humans(first, ["human-1"]) == {"human-1"}
        assert derive_queue.hold_humans(second, ["human-1", "human-2"]) == {"human-2"}
        first.commit()
        second.commit()
        assert derive_queue.hold_humans(second, ["human-1"]) == {"human-1"}
        second.commit()


def _apply_a_linked_user_and_payer(conn: psycopg.Connection) -> None:
    """One human known by two ids (two keys of the person queue): a user and a payer."""
    end = datetime(2026, 3, 1, tzinfo=UTC)
    events: list[DomainEvent] = [
        DeviceActivated(("t", "e1"), end - timedelta(days=3), "dev-1", "user-a", "watch"),
        DeviceUsed(("t", "e2"), end - timedelta(days=2), "dev-1", "user-a"),
        IdentityLinked(("t", "e3"), end - timedelta(days=2), "user-a", "payer-b"),
    ]
    with conn.transaction():
        apply_events(conn, events, {("tenure.test.v1", 0): end})


def test_a_pass_leaves_a_human_another_pass_holds_and_queues_its_ids_again(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as other, psycopg.connect(database_url) as conn:
        _apply_a_linked_user_and_payer(conn)
        derive_queue.enqueue(conn, "person", ["queued-later"])
        conn.commit()
        assert derive_queue.hold_humans(other, ["user-a", "payer-b"]) == {"user-a", "payer-b"}
        result = derive_pass(conn, allowed_lateness=timedelta(hours=1), limit=2)
        assert result.persons == 0  # the human is another pass's: no row, no failure
        queued = derive_queue.oldest(conn, "person", 10)  # queued again where they were
        assert sorted(queued[:2]) == ["payer-b", "user-a"] and queued[2:] == ["queued-later"]
        derive_queue.drop_marks(conn, "person", ["queued-later"])
        conn.commit()
        other.commit()  # the other pass ends
        assert derive_pass(conn, allowed_lateness=timedelta(hours=1)).persons == 1
        assert derive_queue.oldest(conn, "person", 10) == []


def _written(conn: psycopg.Connection, human: str, basis: int) -> None:
    view = person_view_at(PersonState(human), datetime(2026, 2, 1, tzinfo=UTC))  # an older view
    row = (*stored_person_row(view, [], None), basis)
    assert postgres_store(conn).read_models.write_persons([PersonWrite(human, (), row)]) == (
        set(),
        set(),
    )


@pytest.mark.parametrize("linked", [set(), {"h-new", "h-updated"}, {"h-a", "h-updated"}])
def test_rows_another_pass_wrote_after_the_snapshot_are_left_out_not_a_failure(
    database_url: str, linked: set[str]
) -> None:
    """The window the human locks leave: the other pass committed between this pass's
    snapshot and its write. Its humans are left out (returned as overtaken); the rest of
    the pass is written and commits, whichever humans are marked linked (written apart)."""
    with psycopg.connect(database_url) as other, psycopg.connect(database_url) as conn:
        _written(other, "h-updated", 1)
        other.commit()
        with repeatable_read_transaction(conn):
            conn.execute("SELECT 1")  # the snapshot
            _written(other, "h-updated", 2)  # a newer version of a row this pass sees
            _written(other, "h-new", 2)  # a row this pass cannot see at all
            other.commit()
            end = datetime(2026, 3, 1, tzinfo=UTC)
            views = {
                h: person_view_at(PersonState(h), end) for h in ("h-a", "h-new", "h-updated", "h-z")
            }
            writes = [
                PersonWrite(h, (), (*stored_person_row(v, [], None), 9), h in linked)
                for h, v in views.items()
            ]
            written = postgres_store(conn).read_models.write_persons(writes)
            assert written == (set(), {"h-new", "h-updated"})
        rows = dict(conn.execute("SELECT person_id, basis FROM persons").fetchall())
        assert rows == {"h-a": 9, "h-new": 2, "h-updated": 2, "h-z": 9}


def test_a_pass_overtaken_on_a_human_queues_its_ids_again_and_writes_nothing_of_it(
    database_url: str,
) -> None:
    lateness = timedelta(hours=1)
    with psycopg.connect(database_url) as other, psycopg.connect(database_url) as conn:
        _apply_a_linked_user_and_payer(conn)
        with repeatable_read_transaction(conn):
            claimed = derive_queue.claim(conn, "person", 10)  # the snapshot
            assert sorted(claimed) == ["payer-b", "user-a"]
            for human in claimed:  # whichever id is the human: another pass wrote it since
                _written(other, human, 1)
            other.commit()
            result = derive_claimed(postgres_store(conn), claimed, [], lateness, DEFAULT_CONFIG)
            assert result is not None and (result.persons, result.transitions) == (0, 0)
        assert sorted(derive_queue.oldest(conn, "person", 10)) == ["payer-b", "user-a"]
        assert conn.execute("SELECT count(*) FROM lifecycle_transitions").fetchone() == (0,)
        conn.commit()
        assert derive_pass(conn, allowed_lateness=lateness).persons == 1  # then derived
        assert derive_queue.oldest(conn, "person", 10) == []


def test_a_pass_finding_only_held_humans_rolls_back_and_wakes_nobody(
    database_url: str,
) -> None:
    """Given back and committed, the held ids' marks would notify the deriver, which would
    claim them again at once, over and over, until the holder commits."""
    lateness = timedelta(hours=1)
    with (
        psycopg.connect(database_url) as other,
        psycopg.connect(database_url) as conn,
        psycopg.connect(database_url, autocommit=True) as listener,
    ):
        _apply_a_linked_user_and_payer(conn)
        derive_queue.drop_marks(conn, "device", ["dev-1"])  # only the human's two ids queued
        marks = conn.execute("SELECT person_id, seq, queued_at FROM dirty_persons").fetchall()
        conn.commit()
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(DERIVE_QUEUE)))
        assert derive_queue.hold_humans(other, ["user-a", "payer-b"]) == {"user-a", "payer-b"}
        assert derive_pass(conn, allowed_lateness=lateness) == DeriveResult(0, 0, 0, 0)
        assert list(listener.notifies(timeout=1.0, stop_after=1)) == []
        again = conn.execute("SELECT person_id, seq, queued_at FROM dirty_persons").fetchall()
        conn.commit()
        assert len(marks) >= 2 and sorted(again) == sorted(marks)  # same place, same age
        other.commit()  # the holder ends: the next pass derives the human
        assert derive_pass(conn, allowed_lateness=lateness).persons == 1
