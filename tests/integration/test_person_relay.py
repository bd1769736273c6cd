"""The persons topic's relay position (``tenure.storage.person_changes``): one relay at a
time, and never a position older than the one another relay has committed."""

from __future__ import annotations

import psycopg
import pytest

from tenure.storage.connection import repeatable_read
from tenure.storage.person_changes import START, ChangeCursor, claim_relay, move_relay


def test_a_relay_whose_snapshot_predates_another_relays_move_gets_no_old_position(
    database_url: str,
) -> None:
    """The lock statement takes a repeatable-read snapshot, and the lock can be granted after
    another relay committed its move: that relay's page must not be handed out again."""
    moved = ChangeCursor(4715, "p22-9")
    with psycopg.connect(database_url) as late, psycopg.connect(database_url) as other:
        with (
            pytest.raises(psycopg.errors.SerializationFailure),
            late.transaction(),
        ):
            repeatable_read(late)
            late.execute("SELECT 1")  # the snapshot, before the other relay's commit
            with other.transaction():
                assert claim_relay(other) == START
                move_relay(other, moved)
            claim_relay(late)
        with late.transaction():  # a fresh snapshot sees the move
            repeatable_read(late)
            assert claim_relay(late) == moved


def test_one_relay_at_a_time(database_url: str) -> None:
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        with first.transaction():
            assert claim_relay(first) == START
            with second.transaction():
                assert claim_relay(second) is None
