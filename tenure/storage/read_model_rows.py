"""The derive stage's writes to the read models: rows move only forward.

A derive pass reads the views it is about to replace (:func:`current_views`, for the
transitions), deletes the rows of ids that became aliases or were erased
(:func:`delete_persons`) and upserts its rows through a staging copy
(:func:`upsert_forward`): a row is replaced only when its ``basis`` (and ``as_of``, for
persons) does not decrease, and the keys that did not move are returned to be queued again.
The atomic rebuild of the whole tables is in :mod:`tenure.storage.read_models`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.domain.view import PersonView
from tenure.storage.connection import Conn
from tenure.storage.seam import PersonsWritten, PersonWrite
from tenure.storage.staged_upsert import staged_upsert

__all__ = ["current_views", "delete_persons", "split_on_conflict", "upsert_forward"]


def current_views(conn: Conn, person_ids: Sequence[str], as_of: datetime) -> dict[str, PersonView]:
    """The stored views of ``person_ids`` that have a row (the fields transitions compare),
    dated ``as_of``."""
    rows = conn.execute(
        "SELECT person_id, segment, stage, level, tier, is_super_user FROM persons"
        " WHERE person_id = ANY(%b)",
        (list(person_ids),),
    ).fetchall()
    return {
        str(r[0]): PersonView(
            str(r[0]),
            as_of,
            segment=Segment(r[1]),
            stage=Stage(r[2]),
            level=Level(r[3]),
            tier=str(r[4]),
            is_super_user=bool(r[5]),
        )
        for r in rows
    }


def delete_persons(conn: Conn, person_ids: Sequence[str]) -> None:
    """Delete the ``persons`` rows of ``person_ids`` (aliases of another id, or erased)."""
    if person_ids:
        conn.execute("DELETE FROM persons WHERE person_id = ANY(%b)", (sorted(person_ids),))


def upsert_forward(
    conn: Conn, table: str, key: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> set[str]:
    """Insert or move rows forward; return the keys that did not move (to queue again).

    ``rows`` hold ``columns`` then the ``basis``; a stored row is replaced only when its
    ``basis`` (and its ``as_of``, when ``columns`` has one) is not greater than the new one.
    Through a staging copy (:func:`~tenure.storage.staged_upsert.staged_upsert`), so it may
    be called again in the transaction.
    """
    if not rows:
        return set()
    guard = sql.SQL("{t}.basis <= EXCLUDED.basis").format(t=sql.Identifier(table))
    if "as_of" in columns:
        guard = guard + sql.SQL(" AND {t}.as_of <= EXCLUDED.as_of").format(t=sql.Identifier(table))
    moved = staged_upsert(conn, table, key, (*columns, "basis"), rows, guard)
    return {str(r[0]) for r in rows} - set(moved)


def write_linked_apart(
    writes: Sequence[PersonWrite], attempt: Callable[[Sequence[PersonWrite]], set[str]]
) -> PersonsWritten:
    """:func:`split_on_conflict` on the humans with one id, then on the linked humans
    (``PersonWrite.linked``). Two passes claim different keys, so only a human with two ids
    can have its row written by another pass after this pass's snapshot: written apart, a
    conflict splits the pass's few linked humans, not all its rows. At 100,000 persons the
    catch-up made 1,309 failed upserts of whole halves before (docs/design/derive-cost.md,
    "Session 23")."""
    alone = split_on_conflict([w for w in writes if not w.linked], attempt)
    linked = split_on_conflict([w for w in writes if w.linked], attempt)
    return PersonsWritten(alone.stale | linked.stale, alone.overtaken | linked.overtaken)


def split_on_conflict(
    writes: Sequence[PersonWrite], attempt: Callable[[Sequence[PersonWrite]], set[str]]
) -> PersonsWritten:
    """Run ``attempt`` (writes in a savepoint of their own; returns the rows that did not
    move) on ``writes``; when it fails with a serialization error, on each half, down to the
    single humans that fail, which are left out (``overtaken``). With k failing humans among
    n, at most about 2 k log2(n) attempts more than one."""
    if not writes:
        return PersonsWritten(set(), set())
    try:
        return PersonsWritten(attempt(writes), set())
    except psycopg.errors.SerializationFailure:
        if len(writes) == 1:
            return PersonsWritten(set(), {writes[0].human})
    half = len(writes) // 2
    first, second = (
        split_on_conflict(writes[:half], attempt),
        split_on_conflict(writes[half:], attempt),
    )
    return PersonsWritten(first.stale | second.stale, first.overtaken | second.overtaken)
