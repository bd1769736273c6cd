"""The derive stage's work queues (``dirty_persons``, ``dirty_devices``) and its schedule.

A queue holds a *mark* per key and batch (append-only, no uniqueness check), each with its
arrival number ``seq`` (migration 0013). Keys are claimed oldest-queued first: a key's age
is that of its first mark, so no key order, hash or partition can starve, and a burst for
some keys delays another key by at most the marks queued before it.

Time-driven work comes from the persons' schedule: ``persons.next_change_at`` is when a
row's view next changes with no new facts (``tenure/domain/schedule.py``), and
:func:`queue_due_persons` queues exactly the rows whose time has come.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from psycopg import sql

from tenure.storage.connection import Conn

Kind = Literal["person", "device"]

_QUEUES: dict[str, tuple[str, str]] = {
    "person": ("dirty_persons", "person_id"),
    "device": ("dirty_devices", "device_id"),
}

CLAIM_LOCKS: dict[str, int] = {"dirty_persons": 0x7E01, "dirty_devices": 0x7E02,
                               "survival_dirty": 0x7E03, "churn_pending": 0x7E05}  # fmt: skip
"""The advisory lock space of each queue's key locks (``pg_try_advisory_xact_lock(space,
hashtext(key))``), taken by a claim and held until its transaction ends. Locking each key's
first mark (``FOR UPDATE SKIP LOCKED``) did not keep two passes apart: marks are numbered
when inserted but become visible when their batch commits, so a pass could hold a key's
marks while a batch that had numbered its mark earlier committed, giving the key a new,
unlocked first mark. A second pass then claimed the key too, waited for the first pass's
locks and failed (``tests/integration/test_derive_claims.py``). Two passes deriving one
human through two linked ids are kept apart by :data:`HUMAN_LOCKS`."""

HEAD_FACTOR = 4
"""A claim first looks at the queue's first ``limit * HEAD_FACTOR`` marks (the *head*): room
for duplicate marks of one key and for the keys other passes hold, without scanning the
whole queue. When the head yields fewer than ``limit`` free keys and the queue is longer,
the claim looks ``HEAD_FACTOR`` times further, until it has ``limit`` keys or has seen the
whole queue: a pass is never left empty-handed by the keys other passes hold, however many
they are (a second worker's 64-key pass behind the first worker's 500-key passes claimed
nothing before, session 28)."""


def _names(kind: Kind) -> dict[str, sql.Identifier]:
    table, column = _QUEUES[kind]
    return {"t": sql.Identifier(table), "c": sql.Identifier(column)}


def claim(conn: Conn, kind: Kind, limit: int) -> list[str]:
    """Claim (delete) every mark of the ``limit`` keys queued longest, return them sorted.

    The keys are ordered by their first mark among the queue's head and taken in that order
    while their *key* lock (:data:`CLAIM_LOCKS`, an advisory lock held until the claiming
    transaction ends) is free: a key another pass holds is skipped, so workers share the
    queue and never derive one key at the same time, even when a mark of the key becomes
    visible after the other pass claimed it. Then every mark of the claimed keys the
    transaction's snapshot sees is deleted. As the first statement of a repeatable read
    transaction, the claim takes its snapshot.
    """
    return sorted(claim_marks(conn, kind, limit))


class Place(NamedTuple):
    """Where a claimed key stood in the queue: its oldest claimed mark's ``seq``, the
    earliest ``queued_at`` of its claimed marks, and the seconds from then to the claim
    (both times read from the server's clock)."""

    seq: int
    queued_at: datetime
    waited_s: float


_PLACE_COLUMNS = (sql.Identifier("queued_at"), sql.SQL("clock_timestamp()"))
"""What a derive-queue claim returns of each mark besides its key and ``seq``."""


def claim_marks(conn: Conn, kind: Kind, limit: int) -> dict[str, Place]:
    """:func:`claim`, with each claimed key's :class:`Place` (for :func:`give_back`, and
    how long the key had waited)."""
    table, column = _QUEUES[kind]
    return _places_of(claim_oldest_rows(conn, table, column, limit, _PLACE_COLUMNS))


def claim_oldest(conn: Conn, table: str, column: str, limit: int) -> list[str]:
    """:func:`claim` on any queue of marks (a ``seq`` identity column, no uniqueness): the
    derive queues, and ``survival_dirty`` (the aggregates stage's queue, migration 0025).

    The candidates (each key's first mark in the head, oldest first) are materialised, so
    the key locks are tried one candidate at a time, in that order, only until ``limit``
    keys are held. A key lock only ever holds back a pass that would derive the same key
    (a hash collision of two keys delays one of them to a later pass).
    """
    return sorted(_claim_oldest_marks(conn, table, column, limit))


def _claim_oldest_marks(conn: Conn, table: str, column: str, limit: int) -> dict[str, int]:
    return _oldest_of(claim_oldest_rows(conn, table, column, limit, ()))


def claim_oldest_rows(
    conn: Conn, table: str, column: str, limit: int, payload: Sequence[str | sql.Composable]
) -> list[tuple[Any, ...]]:
    """:func:`claim_oldest`, returning every claimed mark as ``(key, seq, *payload)``
    (``payload``: column names, or expressions; a queue whose marks carry data).

    Each round claims from a head :data:`HEAD_FACTOR` times longer than the last, only
    the keys still missing; the marks this transaction deleted are gone from its later
    rounds' heads, the keys other passes hold are still there (and skipped again).
    """
    query = sql.SQL(
        "WITH head AS MATERIALIZED (SELECT {c}, seq FROM {t} ORDER BY seq LIMIT %(head)s),"
        " firsts AS MATERIALIZED (SELECT {c} AS key FROM (SELECT DISTINCT ON ({c}) {c}, seq"
        " FROM head ORDER BY {c}, seq) first_marks ORDER BY seq),"
        " held AS (SELECT key FROM firsts"
        " WHERE pg_try_advisory_xact_lock(%(space)s, hashtext(key)) LIMIT %(limit)s),"
        " gone AS (DELETE FROM {t} WHERE {c} IN (SELECT key FROM held) RETURNING {r})"
        " SELECT (SELECT count(*) FROM head), gone.* FROM (VALUES (1)) one (x)"
        " LEFT JOIN gone ON true"
    ).format(
        t=sql.Identifier(table),
        c=sql.Identifier(column),
        r=sql.SQL(", ").join(_returned(column, payload)),
    )
    claimed: list[tuple[Any, ...]] = []
    keys: set[str] = set()
    head = limit * HEAD_FACTOR
    while len(keys) < limit:
        params = {"head": head, "limit": limit - len(keys), "space": CLAIM_LOCKS[table]}
        rows = conn.execute(query, params).fetchall()
        found = [row[1:] for row in rows if row[1] is not None]
        claimed += found
        keys.update(str(row[0]) for row in found)
        if int(rows[0][0]) < head:  # the head was the whole queue
            break
        head *= HEAD_FACTOR
    return claimed


def _returned(column: str, payload: Sequence[str | sql.Composable]) -> list[sql.Composable]:
    named = (column, "seq", *payload)
    return [sql.Identifier(c) if isinstance(c, str) else c for c in named]


def _places_of(rows: Sequence[tuple[Any, ...]]) -> dict[str, Place]:
    """Each key's :class:`Place` among deleted ``(key, seq, queued_at, now)`` rows."""
    firsts: dict[str, tuple[int, datetime, datetime]] = {}
    for key, seq, queued_at, now in rows:
        was = firsts.get(str(key))
        if was is not None:
            seq, queued_at = min(was[0], int(seq)), min(was[1], queued_at)
        firsts[str(key)] = (int(seq), queued_at, now)
    return {k: Place(seq, at, (now - at).total_seconds()) for k, (seq, at, now) in firsts.items()}


def _oldest_of(rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """Each key's oldest ``seq`` among deleted ``(key, seq)`` rows."""
    places: dict[str, int] = {}
    for key, seq, *_ in rows:
        if str(key) not in places or seq < places[str(key)]:
            places[str(key)] = int(seq)
    return places


HUMAN_LOCKS = 0x7E04
"""The advisory lock space of the humans a derive pass derives (``hashtext(human)``), held
until the pass's transaction ends."""


def hold_humans(conn: Conn, humans: Sequence[str]) -> set[str]:
    """Of ``humans`` (canonical person ids), those whose lock no other transaction holds,
    now held by this one until it ends.

    Two passes claim different keys, but two ids of one human (a payer's and a user's,
    linked) can be claimed by two passes at once: both derived the same ``persons`` row and
    the later one failed its upsert with a serialization error, redoing its whole pass
    (97 of 104 such failures in 90 s of the freshness benchmark's full load).
    """
    if not humans:
        return set()
    rows = conn.execute(
        "SELECT h FROM unnest(%b::text[]) h WHERE pg_try_advisory_xact_lock(%s, hashtext(h))",
        (sorted(set(humans)), HUMAN_LOCKS),
    ).fetchall()
    return {str(r[0]) for r in rows}


def claim_keys(conn: Conn, kind: Kind, keys: Sequence[str]) -> list[str]:
    """Claim (delete) every mark of exactly ``keys`` whose key lock (:data:`CLAIM_LOCKS`)
    is free, as :func:`claim` does; return those that were queued. A key another pass
    holds is left to that pass: its marks stay queued."""
    return sorted(claim_key_marks(conn, kind, keys))


def claim_key_marks(conn: Conn, kind: Kind, keys: Sequence[str]) -> dict[str, Place]:
    """:func:`claim_keys`, with each claimed key's :class:`Place`."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    table, _ = _QUEUES[kind]
    rows = conn.execute(
        sql.SQL(
            "WITH held AS MATERIALIZED (SELECT key FROM unnest(%b::text[]) key"
            " WHERE pg_try_advisory_xact_lock(%b, hashtext(key)))"
            " DELETE FROM {t} WHERE {c} IN (SELECT key FROM held)"
            " RETURNING {c}, seq, queued_at, clock_timestamp()"
        ).format(**_names(kind)),
        (wanted, CLAIM_LOCKS[table]),
    ).fetchall()
    return _places_of(rows)


def drop_marks(conn: Conn, kind: Kind, keys: Sequence[str]) -> None:
    """Delete every mark of ``keys``, held by another pass or not (a dead-lettered key)."""
    if keys:
        conn.execute(
            sql.SQL("DELETE FROM {t} WHERE {c} = ANY(%b)").format(**_names(kind)),
            (sorted(set(keys)),),
        )


def oldest(conn: Conn, kind: Kind, limit: int) -> list[str]:
    """Up to ``limit`` queued keys, oldest first: the keys a :func:`claim` would take with no
    key held by another pass (its head widened the same way)."""
    query = sql.SQL(
        "SELECT {c} FROM (SELECT {c}, seq FROM {t} ORDER BY seq LIMIT %(head)s) head"
        " GROUP BY {c} ORDER BY min(seq) LIMIT %(limit)s"
    ).format(**_names(kind))
    head = limit * HEAD_FACTOR
    while True:
        rows = conn.execute(query, {"head": head, "limit": limit}).fetchall()
        if len(rows) >= limit or not _longer_than(conn, kind, head):
            return [str(r[0]) for r in rows]
        head *= HEAD_FACTOR


def _longer_than(conn: Conn, kind: Kind, marks: int) -> bool:
    """Whether the queue holds more than ``marks`` marks."""
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {t} ORDER BY seq OFFSET %s)")
    row = conn.execute(query.format(**_names(kind)), (marks,)).fetchone()
    return bool(row and row[0])


def enqueue(conn: Conn, kind: Kind, keys: Sequence[str]) -> None:
    """Queue ``keys`` (one new mark each, at the back of the queue)."""
    wanted = sorted(set(keys))
    if wanted:
        conn.execute(
            sql.SQL("INSERT INTO {t} ({c}) SELECT unnest(%b::text[])").format(**_names(kind)),
            (wanted,),
        )


def give_back(conn: Conn, kind: Kind, places: Mapping[str, Place]) -> None:
    """Queue each key of ``places`` again with one mark at its given place (``seq`` and
    ``queued_at`` of the marks this transaction claimed): a key a pass leaves to another
    pass keeps its age."""
    if places:
        keys = sorted(places)
        conn.execute(
            sql.SQL(
                "INSERT INTO {t} (seq, {c}, queued_at) OVERRIDING SYSTEM VALUE"
                " SELECT * FROM unnest(%b::bigint[], %b::text[], %b::timestamptz[])"
            ).format(**_names(kind)),
            ([places[k].seq for k in keys], keys, [places[k].queued_at for k in keys]),
        )


def queue_touched(conn: Conn, person_ids: Iterable[str], device_ids: Iterable[str]) -> int:
    """Queue ``person_ids`` and every person a touched device mentions (their views depend
    on it); return how many ``person_ids`` were queued.

    The queue is append-only (a mark per key and batch): a derive pass whose snapshot
    predates this batch does not see, so does not consume, its marks.
    """
    persons, devices = sorted(set(person_ids)), sorted(set(device_ids))
    if persons or devices:
        conn.execute(
            "INSERT INTO dirty_persons (person_id) SELECT unnest(%b::text[])"
            " UNION SELECT person_id FROM device_mentions WHERE device_id = ANY(%b)",
            (persons, devices),
        )
    return len(persons)


def queue_due_persons(conn: Conn, as_of: datetime, limit: int | None = None) -> int:
    """Queue the persons whose view changes by time at or before ``as_of``; return how many.

    Exactly the rows with ``next_change_at <= as_of`` (an index range), the earliest due
    first, skipping persons already queued (their next derive moves the schedule anyway).
    With ``limit``, at most that many per call; repeated calls reach every due row.
    """
    cur = conn.execute(
        "INSERT INTO dirty_persons (person_id) SELECT person_id FROM persons p"
        " WHERE next_change_at <= %s"
        " AND NOT EXISTS (SELECT 1 FROM dirty_persons d WHERE d.person_id = p.person_id)"
        " ORDER BY next_change_at LIMIT %s",
        (as_of, limit),
    )
    return cur.rowcount


def due_persons(conn: Conn, as_of: datetime) -> int:
    """How many persons' views are due to change by time at or before ``as_of``."""
    row = conn.execute(
        "SELECT count(*) FROM persons WHERE next_change_at <= %s", (as_of,)
    ).fetchone()
    return int(row[0]) if row else 0


def _count_pair(conn: Conn, query: sql.SQL) -> tuple[int, int]:
    row = conn.execute(query).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def backlog(conn: Conn) -> tuple[int, int]:
    """Distinct persons and devices queued for derive."""
    return _count_pair(
        conn,
        sql.SQL(
            "SELECT (SELECT count(DISTINCT person_id) FROM dirty_persons),"
            " (SELECT count(DISTINCT device_id) FROM dirty_devices)"
        ),
    )


def pending_deltas(conn: Conn) -> tuple[int, int]:
    """Device and person raw delta rows not yet compacted (derive compacts the keys it
    claims)."""
    return _count_pair(
        conn,
        sql.SQL(
            "SELECT (SELECT count(*) FROM raw_device_deltas),"
            " (SELECT count(*) FROM raw_person_deltas)"
        ),
    )
