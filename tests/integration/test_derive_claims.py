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

from tenure.domain.events import DeviceActivated, DeviceUsed, DomainEvent, IdentityLinked
from tenure.projection.apply import apply_events
from tenure.projection.derive import derive_pass
from tenure.storage import derive_queue


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


def test_a_pass_leaves_a_human_another_pass_holds_and_queues_its_ids_again(
    database_url: str,
) -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    events: list[DomainEvent] = [
        DeviceActivated(("t", "e1"), end - timedelta(days=3), "dev-1", "user-a", "watch"),
        DeviceUsed(("t", "e2"), end - timedelta(days=2), "dev-1", "user-a"),
        IdentityLinked(("t", "e3"), end - timedelta(days=2), "user-a", "payer-b"),
    ]
    with psycopg.connect(database_url) as other, psycopg.connect(database_url) as conn:
        with conn.transaction():
            apply_events(conn, events, {("tenure.test.v1", 0): end})
        assert derive_queue.hold_humans(other, ["user-a", "payer-b"]) == {"user-a", "payer-b"}
        result = derive_pass(conn, allowed_lateness=timedelta(hours=1))
        assert result.persons == 0  # the human is another pass's: no row, no failure
        assert sorted(derive_queue.oldest(conn, "person", 10)) == ["payer-b", "user-a"]
        conn.commit()
        other.commit()  # the other pass ends
        assert derive_pass(conn, allowed_lateness=timedelta(hours=1)).persons == 1
        assert derive_queue.oldest(conn, "person", 10) == []
