"""The ``lifecycle_transitions`` outbox: written with the rows that caused them, relayed later.

The derive stage adds transitions in its transaction (:func:`add`, idempotent by transition
id); the relay (:func:`tenure.projection.outbox.publish_pending`) locks the oldest
unpublished ones (:func:`lock_unpublished`), publishes them and marks them
(:func:`mark_published`) in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from tenure.domain.transitions import Transition
from tenure.storage.connection import Conn

__all__ = ["PendingTransition", "add", "lock_unpublished", "mark_published"]


class PendingTransition(NamedTuple):
    """An unpublished transition, as the relay publishes it."""

    transition_id: str
    person_id: str
    kind: str
    old: str
    new: str
    effective_at: datetime
    as_of: datetime


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


def lock_unpublished(conn: Conn, limit: int) -> list[PendingTransition]:
    """Up to ``limit`` unpublished transitions in outbox order, locked (``SKIP LOCKED``: relays
    share the outbox)."""
    rows = conn.execute(
        "SELECT transition_id, person_id, kind, old_value, new_value, effective_at, as_of"
        " FROM lifecycle_transitions WHERE published_at IS NULL ORDER BY seq LIMIT %s"
        " FOR UPDATE SKIP LOCKED",
        (limit,),
    ).fetchall()
    return [PendingTransition(*row) for row in rows]


def mark_published(conn: Conn, transition_ids: Sequence[str]) -> None:
    """Mark ``transition_ids`` published (now)."""
    conn.execute(
        "UPDATE lifecycle_transitions SET published_at = now() WHERE transition_id = ANY(%s)",
        (list(transition_ids),),
    )
