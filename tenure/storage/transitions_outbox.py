"""The ``lifecycle_transitions`` outbox: written with the rows that caused them, relayed later.

The derive stage adds transitions in its transaction (:func:`add`, idempotent by transition
id). Each row records the transaction that wrote it (``written_xid``, migration 0031). The
relay (:func:`tenure.projection.outbox.publish_pending`) follows the outbox from a position
``(xid, seq)`` kept in one row, as the persons topic's relay follows ``persons``
(:mod:`tenure.storage.person_changes`): it claims the relay (:func:`claim_relay`, one relay at
a time), reads the transitions after its position (:func:`after`), publishes them and moves
the position (:func:`move_relay`) in one transaction. Publishing updates no transition row.

A page holds only transitions of transactions older than the oldest one still running
(``pg_snapshot_xmin``): those are final, so a transaction that took its xid before another
but commits after it is never passed over (the commit-order gap of a plain sequence). The
price, as for the persons topic: one long writer holds the relay back until it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from tenure.domain.transitions import Transition
from tenure.storage.connection import Conn
from tenure.storage.follower_claim import claim_follower

__all__ = [
    "START",
    "PendingTransition",
    "RelayPosition",
    "add",
    "after",
    "claim_relay",
    "move_relay",
]


class PendingTransition(NamedTuple):
    """An unpublished transition, as the relay publishes it."""

    transition_id: str
    person_id: str
    kind: str
    old: str
    new: str
    effective_at: datetime
    as_of: datetime


class RelayPosition(NamedTuple):
    """A place in the outbox's order: the writing transaction's xid, then the row's ``seq``
    (the memory backend: xid 0 and the order added)."""

    xid: int
    seq: int


START = RelayPosition(0, 0)
"""Before every transition."""


def add(conn: Conn, found: Sequence[Transition], as_of: datetime) -> None:
    """Add ``found`` (derived as of ``as_of``) to the outbox; ids already there are kept."""
    if found:
        conn.execute(
            "INSERT INTO lifecycle_transitions (transition_id, person_id, kind, old_value,"
            " new_value, effective_at, as_of) SELECT * FROM unnest(%b::text[], %b::text[],"
            " %b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[])"
            " ON CONFLICT (transition_id) DO NOTHING",
            (
                [t.id for t in found], [t.person_id for t in found], [t.kind for t in found],
                [t.old for t in found], [t.new for t in found], [t.at for t in found],
                [as_of] * len(found),
            ),
        )  # fmt: skip


_RELAY_LOCK = 0x7E5A51
"""Advisory lock: one relay of the outbox to the transitions topic at a time."""


def claim_relay(conn: Conn) -> RelayPosition | None:
    """In the caller's repeatable-read transaction: the relay's position if this transaction
    got the relay, else ``None`` (another relay is publishing); raises
    :class:`psycopg.errors.SerializationFailure` when the snapshot predates another relay's
    move (:func:`tenure.storage.follower_claim.claim_follower`)."""
    query = "SELECT xid::text, seq FROM transitions_relay_position"
    return claim_follower(conn, _RELAY_LOCK, query, _position)


def _position(rows: Sequence[tuple[Any, ...]]) -> RelayPosition:
    return START if not rows else RelayPosition(int(rows[0][0]), int(rows[0][1]))


def after(
    conn: Conn, position: RelayPosition, limit: int
) -> tuple[list[PendingTransition], RelayPosition]:
    """Up to ``limit`` transitions after ``position`` in outbox order, of transactions below
    the horizon (module doc), and the position after them."""
    rows = conn.execute(
        "SELECT written_xid::text, seq, transition_id, person_id, kind, old_value, new_value,"
        " effective_at, as_of FROM lifecycle_transitions"
        " WHERE (written_xid, seq) > (%s::text::xid8, %s)"
        " AND written_xid < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY written_xid, seq LIMIT %s",
        (str(position.xid), position.seq, limit),
    ).fetchall()
    if not rows:
        return [], position
    last = rows[-1]
    return [PendingTransition(*row[2:]) for row in rows], RelayPosition(int(last[0]), last[1])


def move_relay(conn: Conn, position: RelayPosition) -> None:
    """Record the relay's new position (after the broker acknowledged what it passed)."""
    conn.execute(
        "UPDATE transitions_relay_position SET xid = %s::text::xid8, seq = %s",
        (str(position.xid), position.seq),
    )
