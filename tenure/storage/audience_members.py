"""Live audience membership in Postgres (migration 0022): members, exits, the audience
stage's positions on the persons change feed, its due schedule, last contacts and the
outbox of membership changes (``tenure.audiences.v1``).

The stage (``tenure/projection/audiences.py``) reads and writes only through these
functions, in one repeatable-read transaction per page (:func:`claim_stage` first).
``audience_members`` and ``audience_exits`` are followed like ``persons`` (their
``changed_xid`` is stamped by a trigger on every insert and update).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tenure.storage.connection import Conn
from tenure.storage.follower_claim import claim_follower
from tenure.storage.person_changes import START, ChangeCursor
from tenure.storage.read_models import STORED_PERSON_COLUMNS

__all__ = [
    "Change",
    "Member",
    "Position",
    "Writes",
    "claim_stage",
    "due_persons",
    "erase",
    "forget_position",
    "last_contacts",
    "mark_published",
    "members_of",
    "members_page",
    "pending_changes",
    "persons_by_id",
    "sizes",
    "write",
]

_STAGE_LOCK = 0x7E5A51
"""Advisory lock: one audience stage pass at a time (membership changes in order)."""


@dataclass(frozen=True, slots=True)
class Position:
    """How far one audience (at one definition version) followed the persons feed."""

    version: int
    cursor: ChangeCursor


@dataclass(frozen=True, slots=True)
class Member:
    """One person's current membership of one audience."""

    version: int
    entered_at: datetime
    suppressed: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry, exit or suppression change, as the outbox keeps it."""

    event_id: str
    audience: str
    version: int
    person_id: str
    kind: str
    suppressed: str | None
    at: datetime


@dataclass
class Writes:
    """What one stage pass writes, in its transaction."""

    entered: dict[tuple[str, str], Member]
    """(audience, person id) -> the membership to upsert (entries, updates)."""
    exited: dict[tuple[str, str], datetime | None]
    """(audience, person id) -> exit instant; ``None``: forget without an exit row
    (erased persons)."""
    contacts: dict[tuple[str, str], datetime]
    """(audience, person id) -> contacted at."""
    due: dict[str, datetime | None]
    """Person id -> when their membership next changes by time (``None``: never)."""
    changes: list[Change]
    forget: set[str]
    """Person ids (erased: tokens) whose contacts and schedule go."""


def claim_stage(conn: Conn) -> dict[str, Position] | None:
    """In the caller's transaction: each audience's position on the persons change feed if
    this transaction got the audience stage (one pass at a time), else ``None``; raises
    :class:`psycopg.errors.SerializationFailure` when the snapshot predates another pass's
    move (:func:`tenure.storage.follower_claim.claim_follower`)."""
    query = "SELECT audience, version, xid::text, person_id FROM audience_positions"
    return claim_follower(conn, _STAGE_LOCK, query, _stage_positions)


def _stage_positions(rows: Sequence[tuple[Any, ...]]) -> dict[str, Position]:
    return {str(a): Position(int(v), ChangeCursor(int(x), str(p))) for a, v, x, p in rows}


def move_positions(conn: Conn, moved: Mapping[str, Position]) -> None:
    """Record the audiences' new positions."""
    names = sorted(moved)
    conn.execute(
        "INSERT INTO audience_positions (audience, version, xid, person_id)"
        " SELECT a, v, x::xid8, p FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[])"
        " AS m(a, v, x, p)"
        " ON CONFLICT (audience) DO UPDATE SET version = EXCLUDED.version, xid = EXCLUDED.xid,"
        " person_id = EXCLUDED.person_id",
        (
            names,
            [moved[n].version for n in names],
            [str(moved[n].cursor.xid) for n in names],
            [moved[n].cursor.person_id for n in names],
        ),
    )


def members_page(conn: Conn, audience: str, limit: int) -> dict[str, int]:
    """Up to ``limit`` members of ``audience`` (person id -> version)."""
    rows = conn.execute(
        "SELECT person_id, version FROM audience_members WHERE audience = %s"
        " ORDER BY person_id LIMIT %s",
        (audience, limit),
    ).fetchall()
    return {str(p): int(v) for p, v in rows}


def forget_position(conn: Conn, audience: str) -> None:
    """Drop the position of an audience that is no longer current (its members are gone)."""
    conn.execute("DELETE FROM audience_positions WHERE audience = %s", (audience,))


def position_or_start(found: Mapping[str, Position], audience: str, version: int) -> ChangeCursor:
    """Where ``audience`` at ``version`` reads from: its position, or the start for a new
    audience or version (its first pass is its backfill)."""
    at = found.get(audience)
    return at.cursor if at is not None and at.version == version else START


def _stored_columns() -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, STORED_PERSON_COLUMNS))


def persons_by_id(conn: Conn, person_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The stored ``persons`` rows (``STORED_PERSON_COLUMNS``) of ``person_ids`` that have
    one."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            sql.SQL("SELECT {} FROM persons WHERE person_id = ANY(%b) ORDER BY person_id").format(
                _stored_columns()
            ),
            (sorted(set(person_ids)),),
        ).fetchall()


def due_persons(conn: Conn, as_of: datetime, limit: int) -> list[str]:
    """Up to ``limit`` persons whose audience schedule came due by ``as_of``, earliest
    first. A person whose own row is due too (``persons.next_change_at``) is left for the
    derive stage: it writes the row again, and the change feed brings the person back."""
    rows = conn.execute(
        "SELECT d.person_id FROM audience_due d"
        " LEFT JOIN persons p ON p.person_id = d.person_id"
        " WHERE d.due_at <= %s AND (p.next_change_at IS NULL OR p.next_change_at > %s)"
        " ORDER BY d.due_at, d.person_id LIMIT %s",
        (as_of, as_of, limit),
    ).fetchall()
    return [str(r[0]) for r in rows]


def members_of(conn: Conn, person_ids: Iterable[str]) -> dict[tuple[str, str], Member]:
    """The current memberships of ``person_ids``: (audience, person id) -> membership."""
    rows = conn.execute(
        "SELECT audience, person_id, version, entered_at, suppressed FROM audience_members"
        " WHERE person_id = ANY(%b)",
        (sorted(set(person_ids)),),
    ).fetchall()
    return {(str(a), str(p)): Member(int(v), e, s) for a, p, v, e, s in rows}


def last_contacts(conn: Conn, person_ids: Iterable[str]) -> dict[tuple[str, str], datetime]:
    """When ``person_ids`` were last contacted, per (audience, person id)."""
    rows = conn.execute(
        "SELECT audience, person_id, contacted_at FROM audience_contacts WHERE person_id = ANY(%b)",
        (sorted(set(person_ids)),),
    ).fetchall()
    return {(str(a), str(p)): at for a, p, at in rows}


def _pairs(keys: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    ordered = sorted(keys)
    return [a for a, _ in ordered], [p for _, p in ordered]


def write(conn: Conn, writes: Writes) -> None:
    """Apply one pass's membership changes, schedule and outbox rows."""
    if writes.entered:
        keys = sorted(writes.entered)
        rows = [writes.entered[k] for k in keys]
        audiences, persons = _pairs(keys)
        conn.execute(
            "INSERT INTO audience_members (audience, person_id, version, entered_at, suppressed)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::int[], %b::timestamptz[],"
            " %b::text[])"
            " ON CONFLICT (audience, person_id) DO UPDATE SET version = EXCLUDED.version,"
            " entered_at = EXCLUDED.entered_at, suppressed = EXCLUDED.suppressed",
            (
                audiences,
                persons,
                [m.version for m in rows],
                [m.entered_at for m in rows],
                [m.suppressed for m in rows],
            ),
        )
        conn.execute(
            "DELETE FROM audience_exits e USING unnest(%b::text[], %b::text[]) AS k(a, p)"
            " WHERE e.audience = k.a AND e.person_id = k.p",
            (audiences, persons),
        )
    if writes.exited:
        audiences, persons = _pairs(writes.exited)
        conn.execute(
            "DELETE FROM audience_members m USING unnest(%b::text[], %b::text[]) AS k(a, p)"
            " WHERE m.audience = k.a AND m.person_id = k.p",
            (audiences, persons),
        )
        kept = sorted(k for k, at in writes.exited.items() if at is not None)
        gone = sorted(k for k, at in writes.exited.items() if at is None)
        if kept:
            a, p = _pairs(kept)
            conn.execute(
                "INSERT INTO audience_exits (audience, person_id, exited_at)"
                " SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[])"
                " ON CONFLICT (audience, person_id) DO UPDATE SET exited_at = EXCLUDED.exited_at",
                (a, p, [writes.exited[k] for k in kept]),
            )
        if gone:
            a, p = _pairs(gone)
            conn.execute(
                "DELETE FROM audience_exits e USING unnest(%b::text[], %b::text[]) AS k(a, p)"
                " WHERE e.audience = k.a AND e.person_id = k.p",
                (a, p),
            )
    if writes.contacts:
        keys = sorted(writes.contacts)
        a, p = _pairs(keys)
        conn.execute(
            "INSERT INTO audience_contacts (audience, person_id, contacted_at)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[])"
            " ON CONFLICT (audience, person_id) DO UPDATE SET contacted_at = EXCLUDED.contacted_at",
            (a, p, [writes.contacts[k] for k in keys]),
        )
    _schedule(conn, writes.due)
    if writes.forget:
        gone_ids = sorted(writes.forget)
        conn.execute("DELETE FROM audience_contacts WHERE person_id = ANY(%b)", (gone_ids,))
        conn.execute("DELETE FROM audience_due WHERE person_id = ANY(%b)", (gone_ids,))
    if writes.changes:
        c = writes.changes
        conn.execute(
            "INSERT INTO audience_changes"
            " (event_id, audience, version, person_id, kind, suppressed, at)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::int[], %b::text[], %b::text[],"
            " %b::text[], %b::timestamptz[]) ON CONFLICT (event_id) DO NOTHING",
            (
                [x.event_id for x in c],
                [x.audience for x in c],
                [x.version for x in c],
                [x.person_id for x in c],
                [x.kind for x in c],
                [x.suppressed for x in c],
                [x.at for x in c],
            ),
        )


def _schedule(conn: Conn, due: Mapping[str, datetime | None]) -> None:
    timed = sorted(p for p, at in due.items() if at is not None)
    never = sorted(p for p, at in due.items() if at is None)
    if timed:
        conn.execute(
            "INSERT INTO audience_due (person_id, due_at)"
            " SELECT * FROM unnest(%b::text[], %b::timestamptz[])"
            " ON CONFLICT (person_id) DO UPDATE SET due_at = EXCLUDED.due_at",
            (timed, [due[p] for p in timed]),
        )
    if never:
        conn.execute("DELETE FROM audience_due WHERE person_id = ANY(%b)", (never,))


def pending_changes(conn: Conn, limit: int) -> list[tuple[int, Change]]:
    """Up to ``limit`` unpublished changes in outbox order, locked for the caller's
    transaction (others skip them)."""
    rows = conn.execute(
        "SELECT seq, event_id, audience, version, person_id, kind, suppressed, at"
        " FROM audience_changes WHERE published_at IS NULL ORDER BY seq LIMIT %s"
        " FOR UPDATE SKIP LOCKED",
        (limit,),
    ).fetchall()
    return [(int(r[0]), Change(str(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]), r[6], r[7]))
            for r in rows]  # fmt: skip


def mark_published(conn: Conn, seqs: Sequence[int]) -> None:
    """Mark outbox rows published (after the broker acknowledged them)."""
    conn.execute(
        "UPDATE audience_changes SET published_at = now() WHERE seq = ANY(%b)", (list(seqs),)
    )


def sizes(conn: Conn) -> dict[tuple[str, str], int]:
    """Members per (audience, state): ``contactable`` or the suppression reason."""
    rows = conn.execute(
        "SELECT audience, coalesce(suppressed, 'contactable'), count(*) FROM audience_members"
        " GROUP BY 1, 2"
    ).fetchall()
    return {(str(a), str(s)): int(n) for a, s, n in rows}


def erase(conn: Conn, tokens: Mapping[str, str]) -> None:
    """In a purge's transaction: erased person ids (``id -> token``) leave no trace here.
    Their memberships and changes are renamed to the tokens (the stage then sees the
    erasure on the change feed and publishes each exit keyed by token); their exits,
    contacts and schedule are deleted; a position at their id moves back to the start of
    its transaction's changes."""
    old = sorted(tokens)
    new = [tokens[p] for p in old]
    for table in ("audience_members", "audience_changes"):
        conn.execute(
            sql.SQL(
                "UPDATE {} t SET person_id = m.new FROM unnest(%b::text[], %b::text[])"
                " AS m(old, new) WHERE t.person_id = m.old"
            ).format(sql.Identifier(table)),
            (old, new),
        )
    # A position at an erased id goes back to the start of its transaction's changes:
    # re-evaluating them is harmless, skipping some (a token sorts after them) would not be.
    conn.execute("UPDATE audience_positions SET person_id = '' WHERE person_id = ANY(%b)", (old,))
    for table in ("audience_exits", "audience_contacts", "audience_due"):
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE person_id = ANY(%b)").format(sql.Identifier(table)),
            (old,),
        )
