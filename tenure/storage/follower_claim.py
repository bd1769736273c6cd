"""One follower of a change feed at a time, and never from a position older than the last
committed move.

A follower (the persons topic's relay, the audience stage) runs one repeatable-read
transaction per page: it takes its advisory lock, reads its position, works from there and
moves the position. The lock statement is the transaction's first, so it also takes the
snapshot, and the lock can be granted just after another holder committed its move and
released: the snapshot then predates that move. Reading the position ``FOR UPDATE``
(:func:`claim_follower`) makes such a transaction fail there with
:class:`psycopg.errors.SerializationFailure`, before it did any work from the old position;
a fresh transaction sees the move.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, LiteralString, TypeVar

from tenure.storage.connection import Conn

__all__ = ["claim_follower"]

FollowerPosition = TypeVar("FollowerPosition")
"""What a follower's position rows are read as (a cursor, or a position per audience)."""


def claim_follower(
    conn: Conn,
    lock: int,
    position_query: LiteralString,
    position_of: Callable[[Sequence[tuple[Any, ...]]], FollowerPosition],
) -> FollowerPosition | None:
    """In the caller's repeatable-read transaction: the follower's position
    (``position_of`` the rows of ``position_query``, a ``SELECT`` of the position table read
    ``FOR UPDATE``) if this transaction got the advisory ``lock``, else ``None`` (another
    holder is at work).

    Raises :class:`psycopg.errors.SerializationFailure` when the snapshot predates another
    holder's committed move (run the transaction again)."""
    got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (lock,)).fetchone()
    if got is None or not got[0]:
        return None
    return position_of(conn.execute(position_query + " FOR UPDATE").fetchall())
