"""Following ``persons`` incrementally: pages of changed and removed persons in change order.

Every ``persons`` row records the transaction that last wrote it (``changed_xid``, set by a
trigger on every insert and update, whoever writes); every deleted person leaves a row in
``person_removals`` (migration 0019). A page holds the changes after a cursor
``(xid, person id)``, in that order, and only changes of transactions older than the oldest
transaction still running (``pg_snapshot_xmin`` of the reader's snapshot). Those are final:
every transaction below that horizon has committed or aborted, and a transaction that starts
later gets a larger xid. So a transaction that took its xid before another one but commits
after it is never skipped by a follower whose cursor passed the other (the commit-order gap
of a plain sequence); the price is that one long writer holds every follower back until it
ends. A row changed again later moves to its new place: a follower sees the latest state of
every person at least once, and every removal (an id merged into another as an alias, or an
erased person: erasure renames its removal rows to the person's token, :func:`erase`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tenure.errors import TenureError
from tenure.storage.connection import Conn
from tenure.storage.follower_claim import claim_follower

__all__ = [
    "START",
    "ChangeCursor",
    "ChangePage",
    "InvalidCursor",
    "changes_after",
    "claim_relay",
    "erase",
    "move_relay",
]


class InvalidCursor(TenureError, ValueError):
    """A change cursor that :meth:`ChangeCursor.decode` cannot read."""


@dataclass(frozen=True, slots=True, order=True)
class ChangeCursor:
    """A position in the change order: the writing transaction's xid, then the person id."""

    xid: int
    person_id: str

    def encode(self) -> str:
        """The opaque text form (URL-safe)."""
        raw = f"{self.xid}:{self.person_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ChangeCursor:
        """The cursor of :meth:`encode`'s text; ``"0"`` is the start."""
        if text == "0":
            return START
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            xid, _, person_id = raw.partition(":")
            number = int(xid)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidCursor(f"not a change cursor: {text!r}") from exc
        if not 0 <= number < 1 << 64 or "\x00" in person_id:
            raise InvalidCursor(f"not a change cursor: {text!r}")
        return cls(number, person_id)


START = ChangeCursor(0, "")
"""Before every change."""


@dataclass(frozen=True, slots=True)
class ChangePage:
    """Changed persons (stored rows, as dicts by column, with ``live_as_of``) and removed
    person ids (a plain id, or the token of an erased person), and the cursor after them."""

    persons: list[dict[str, Any]]
    removed: list[str]
    next: ChangeCursor


def _page(table: str, columns: sql.Composable) -> sql.Composed:
    return sql.SQL(
        "SELECT changed_xid::text AS change_xid, {c} FROM {t}"
        " WHERE (changed_xid, person_id) > (%s::text::xid8, %s) AND changed_xid < %s::text::xid8"
        " ORDER BY changed_xid, person_id LIMIT %s"
    ).format(c=columns, t=sql.Identifier(table))


def changes_after(
    conn: Conn, cursor: ChangeCursor, limit: int, columns: tuple[str, ...]
) -> ChangePage:
    """Up to ``limit`` changes after ``cursor`` in change order, below the horizon (module
    doc); ``columns``: the ``persons`` columns to return. The caller runs it in one
    repeatable-read snapshot (``read_only_snapshot``), so horizon and rows agree."""
    person_columns = sql.SQL(", ").join(map(sql.Identifier, columns)) + sql.SQL(
        ", (SELECT as_of FROM survival_state) AS live_as_of"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        horizon = cur.execute(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x"
        ).fetchone()
        assert horizon is not None
        args = (str(cursor.xid), cursor.person_id, horizon["x"], limit)
        changed = cur.execute(_page("persons", person_columns), args).fetchall()
        removed = cur.execute(_page("person_removals", sql.SQL("person_id")), args).fetchall()
    merged = sorted(
        [(ChangeCursor(int(r.pop("change_xid")), str(r["person_id"])), r, False) for r in changed]
        + [(ChangeCursor(int(r["change_xid"]), str(r["person_id"])), r, True) for r in removed],
        key=lambda item: item[0],
    )[:limit]
    return ChangePage(
        [row for _, row, gone in merged if not gone],
        [str(row["person_id"]) for _, row, gone in merged if gone],
        merged[-1][0] if merged else cursor,
    )


def erase(conn: Conn, tokens: Mapping[str, str]) -> None:
    """Rename the removal rows of erased person ids (``person id -> token``) to their
    tokens, as changes of the caller's transaction, so followers see the erasure without
    the id staying anywhere."""
    old = sorted(tokens)
    conn.execute(
        "INSERT INTO person_removals (person_id)"
        " SELECT m.new FROM unnest(%b::text[], %b::text[]) AS m(old, new)"
        " JOIN person_removals r ON r.person_id = m.old"
        " ON CONFLICT (person_id) DO UPDATE SET changed_xid = pg_current_xact_id()",
        (old, [tokens[p] for p in old]),
    )
    conn.execute("DELETE FROM person_removals WHERE person_id = ANY(%b)", (old,))


_RELAY_LOCK = 0x7E5A50
"""Advisory lock: one relay of the change feed to the persons topic at a time."""


def claim_relay(conn: Conn) -> ChangeCursor | None:
    """In the caller's transaction: the relay's position if this transaction got the relay
    (one at a time, so records go out in change order), else ``None``; raises
    :class:`psycopg.errors.SerializationFailure` when the snapshot predates another relay's
    move (:func:`tenure.storage.follower_claim.claim_follower`)."""
    query = "SELECT xid::text, person_id FROM person_topic_position"
    return claim_follower(conn, _RELAY_LOCK, query, _relay_position)


def _relay_position(rows: Sequence[tuple[Any, ...]]) -> ChangeCursor:
    return START if not rows else ChangeCursor(int(rows[0][0]), str(rows[0][1]))


def move_relay(conn: Conn, cursor: ChangeCursor) -> None:
    """Record the relay's new position (after the broker acknowledged what it passed)."""
    conn.execute(
        "UPDATE person_topic_position SET xid = %s::text::xid8, person_id = %s",
        (str(cursor.xid), cursor.person_id),
    )
