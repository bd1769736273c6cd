"""Claiming a change-feed follower's position (``tenure.storage.follower_claim``), for both
followers, the persons topic's relay and the audience stage: one at a time, and never from a
position older than the one another holder has committed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tenure.storage import audience_members
from tenure.storage.connection import Conn, repeatable_read_transaction
from tenure.storage.person_changes import START, ChangeCursor, claim_relay, move_relay


@dataclass(frozen=True)
class Follower:
    """How a test claims and moves one follower's position."""

    claim: Callable[[Conn], Any]
    move: Callable[[Conn, Any], None]
    start: Any
    """The position committed before the test (the relay's row exists from the migration;
    an audience's row only once the stage moved it: a pass whose snapshot missed another's
    first move of an audience fails at its own move, before its commit publishes anything)."""
    moved: Any
    """A position another holder moves to."""


RELAY = Follower(claim_relay, move_relay, START, ChangeCursor(4715, "p22-9"))
AUDIENCE_STAGE = Follower(
    audience_members.claim_stage,
    audience_members.move_positions,
    {"lapsing": audience_members.Position(2, ChangeCursor(7, "a"))},
    {"lapsing": audience_members.Position(2, ChangeCursor(4715, "p22-9"))},
)
FOLLOWERS = pytest.mark.parametrize("follower", [RELAY, AUDIENCE_STAGE], ids=["relay", "audiences"])


def _commit_start(conn: Conn, follower: Follower) -> None:
    with conn.transaction():
        if follower.claim(conn) != follower.start:
            follower.move(conn, follower.start)


@FOLLOWERS
def test_a_claim_whose_snapshot_predates_another_holders_move_gets_no_old_position(
    database_url: str, follower: Follower
) -> None:
    """The lock statement takes the repeatable-read snapshot, and the lock can be granted
    after another holder committed its move: the late claim must fail before any work is
    done from the old position."""
    with psycopg.connect(database_url) as late, psycopg.connect(database_url) as other:
        _commit_start(other, follower)
        with (
            pytest.raises(psycopg.errors.SerializationFailure),
            repeatable_read_transaction(late),
        ):
            late.execute("SELECT 1")  # the snapshot, before the other holder's commit
            with other.transaction():
                assert follower.claim(other) == follower.start
                follower.move(other, follower.moved)
            follower.claim(late)
        with repeatable_read_transaction(late):  # a fresh snapshot sees the move
            assert follower.claim(late) == follower.moved


@FOLLOWERS
def test_one_holder_at_a_time(database_url: str, follower: Follower) -> None:
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        _commit_start(first, follower)
        with first.transaction():
            assert follower.claim(first) == follower.start
            with second.transaction():
                assert follower.claim(second) is None


def test_an_audience_pass_that_missed_anothers_first_move_fails_at_its_own_move(
    database_url: str,
) -> None:
    """No position row to lock yet: the late pass sees none, and fails when it moves."""
    first = {"lapsing": audience_members.Position(2, ChangeCursor(7, "a"))}
    with psycopg.connect(database_url) as late, psycopg.connect(database_url) as other:
        with (
            pytest.raises(psycopg.errors.SerializationFailure),
            repeatable_read_transaction(late),
        ):
            late.execute("SELECT 1")
            with other.transaction():
                assert audience_members.claim_stage(other) == {}
                audience_members.move_positions(other, first)
            assert audience_members.claim_stage(late) == {}
            audience_members.move_positions(late, AUDIENCE_STAGE.moved)
        with late.transaction():
            assert audience_members.claim_stage(late) == first
