"""Reading audience membership: pages of members, their changes in change order, sizes.

The members (``audience_members``) and the exits (``audience_exits``) are written by the
projector as views change (migration 0022): every row records the transaction that last
wrote it (``changed_xid``), and a person who leaves an audience leaves an exit row, exactly
like ``persons`` and ``person_removals`` (migration 0019). So following one audience works
like following persons (:mod:`tenure.storage.person_changes`): a cursor ``(xid, person id)``
and only changes of transactions below the oldest one still running
(``pg_snapshot_xmin``), so a change that commits late is never skipped.

A member row carries ``suppressed``: ``None`` when the person may be contacted, else a
reason of :data:`~tenure.domain.audience.SUPPRESSION_REASONS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from psycopg.rows import dict_row

from tenure.domain.audience import SUPPRESSION_REASONS
from tenure.storage.connection import Conn
from tenure.storage.person_changes import ChangeCursor

__all__ = [
    "AudienceSize",
    "MemberChanges",
    "daily_flows",
    "members",
    "members_changed",
    "members_page",
    "sizes",
]

_MEMBER: Final = "person_id, version, entered_at, suppressed"


@dataclass(frozen=True, slots=True)
class AudienceSize:
    """How many members an audience has: contactable ones and suppressed ones by reason."""

    contactable: int = 0
    suppressed: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(SUPPRESSION_REASONS, 0)
    )

    @property
    def members(self) -> int:
        """Every member, contactable or not."""
        return self.contactable + sum(self.suppressed.values())


@dataclass(frozen=True, slots=True)
class MemberChanges:
    """Members that entered or changed (rows as dicts), people who left (``person_id``,
    ``exited_at``), in change order, and the cursor after them."""

    members: list[dict[str, Any]]
    exited: list[dict[str, Any]]
    next: ChangeCursor


def sizes(conn: Conn, audience: str | None = None) -> dict[str, AudienceSize]:
    """The size of every audience with members (or only of ``audience``), by name: one pass
    over the (audience's) member rows."""
    where = "" if audience is None else " WHERE audience = %s"
    rows = conn.execute(
        f"SELECT audience, suppressed, count(*) FROM audience_members{where} GROUP BY 1, 2",
        () if audience is None else (audience,),
    ).fetchall()
    counts: dict[str, dict[str | None, int]] = {}
    for audience, reason, count in rows:
        counts.setdefault(str(audience), {})[None if reason is None else str(reason)] = int(count)
    return {
        audience: AudienceSize(
            by_reason.pop(None, 0),
            {**dict.fromkeys(SUPPRESSION_REASONS, 0), **{str(k): v for k, v in by_reason.items()}},
        )
        for audience, by_reason in counts.items()
    }


def daily_flows(
    conn: Conn, days: int = 30, recent: int = 100_000
) -> list[tuple[datetime, str, str, int]]:
    """``(day, audience, kind, count)`` of the membership changes (``audience_changes``:
    ``entered``, ``exited``, ``suppression_changed``) per UTC day of their instant, over the
    ``days`` days up to the latest change, in day order. Reads at most the ``recent`` latest
    changes (by the outbox's key), so its cost is bounded however long the history: a day
    with more changes than that before the window's end is counted in part."""
    rows = conn.execute(
        "WITH latest AS (SELECT audience, kind, at FROM audience_changes"
        " ORDER BY seq DESC LIMIT %s)"
        " SELECT date_trunc('day', at, 'UTC') AS day, audience, kind, count(*) FROM latest"
        " WHERE at >= date_trunc('day', (SELECT max(at) FROM latest), 'UTC')"
        " - make_interval(days => %s - 1)"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        (recent, days),
    ).fetchall()
    return [(day, str(audience), str(kind), int(n)) for day, audience, kind, n in rows]


def members_page(
    conn: Conn, audience: str, after: str | None, limit: int, *, include_suppressed: bool
) -> list[dict[str, Any]]:
    """Up to ``limit`` members of ``audience`` in person id order after the cursor id;
    only contactable ones unless ``include_suppressed``."""
    query = f"SELECT {_MEMBER} FROM audience_members WHERE audience = %s AND person_id > %s"
    if not include_suppressed:
        query += " AND suppressed IS NULL"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            query + " ORDER BY person_id LIMIT %s", (audience, after or "", limit)
        ).fetchall()


def members(
    conn: Conn, audience: str, *, include_suppressed: bool, page_size: int = 10_000
) -> Iterator[list[dict[str, Any]]]:
    """Every member of ``audience`` in person id order, in pages (for exports). Run it in
    one repeatable-read snapshot (``read_only_snapshot``) for a consistent export."""
    after: str | None = None
    while True:
        page = members_page(conn, audience, after, page_size, include_suppressed=include_suppressed)
        if page:
            yield page
        if len(page) < page_size:
            return
        after = str(page[-1]["person_id"])


def members_changed(conn: Conn, audience: str, cursor: ChangeCursor, limit: int) -> MemberChanges:
    """Up to ``limit`` changes of ``audience`` after ``cursor``: members that entered or
    changed (suppressed or not: a follower must see a suppression start and end) and people
    who left, in change order, below the horizon (module doc). Run it in one
    repeatable-read snapshot (``read_only_snapshot``), so horizon and rows agree."""
    window = (
        " WHERE audience = %s AND (changed_xid, person_id) > (%s::text::xid8, %s)"
        " AND changed_xid < %s::text::xid8 ORDER BY changed_xid, person_id LIMIT %s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        horizon = cur.execute(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x"
        ).fetchone()
        assert horizon is not None
        args = (audience, str(cursor.xid), cursor.person_id, horizon["x"], limit)
        entered = cur.execute(
            f"SELECT changed_xid::text AS change_xid, {_MEMBER} FROM audience_members" + window,
            args,
        ).fetchall()
        exited = cur.execute(
            "SELECT changed_xid::text AS change_xid, person_id, exited_at FROM audience_exits"
            + window,
            args,
        ).fetchall()
    merged = sorted(
        [(ChangeCursor(int(r.pop("change_xid")), str(r["person_id"])), r, False) for r in entered]
        + [(ChangeCursor(int(r.pop("change_xid")), str(r["person_id"])), r, True) for r in exited],
        key=lambda item: item[0],
    )[:limit]
    return MemberChanges(
        [row for _, row, gone in merged if not gone],
        [row for _, row, gone in merged if gone],
        merged[-1][0] if merged else cursor,
    )
