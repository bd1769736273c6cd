"""Claiming a change-feed follower's position (``tenure.storage.follower_claim``), as the
audience stage does: one pass at a time, and never from positions older than the ones
another pass has committed. (The persons topic's relay: ``test_person_relay.py``.)"""

from __future__ import annotations

import psycopg
import pytest

from tenure.storage import audience_members as store
from tenure.storage.connection import repeatable_read
from tenure.storage.person_changes import ChangeCursor

MOVED = {"lapsing": store.Position(2, ChangeCursor(4715, "p22-9"))}


def test_a_pass_whose_snapshot_predates_another_pass_gets_no_old_positions(
    database_url: str,
) -> None:
    """The lock statement takes the snapshot, and the lock can be granted after another pass
    committed its move: the late pass must fail before it evaluates from the old positions."""
    with psycopg.connect(database_url) as late, psycopg.connect(database_url) as other:
        with other.transaction():
            store.move_positions(other, {"lapsing": store.Position(2, ChangeCursor(7, "a"))})
        with (
            pytest.raises(psycopg.errors.SerializationFailure),
            late.transaction(),
        ):
            repeatable_read(late)
            late.execute("SELECT 1")  # the snapshot, before the other pass's commit
            with other.transaction():
                assert store.claim_stage(other) is not None
                store.move_positions(other, MOVED)
            store.claim_stage(late)
        with late.transaction():  # a fresh snapshot sees the move
            repeatable_read(late)
            assert store.claim_stage(late) == MOVED


def test_one_audience_pass_at_a_time(database_url: str) -> None:
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        with first.transaction():
            assert store.claim_stage(first) is not None
            with second.transaction():
                assert store.claim_stage(second) is None
