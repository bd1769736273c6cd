"""The aggregates stage: keep the survival aggregates in Postgres equal to the persons table.

Triggers on ``persons`` queue changed person ids in ``survival_dirty`` (a mark per change,
append-only: migration 0025). :func:`drain` claims the persons queued longest with every
mark of theirs (``derive_queue.claim_oldest``: a key lock each, skipped when another drain
holds it, so workers share the queue and never drain one person at the same time), and in
one transaction subtracts each person's previous contribution (the ``survival_contributions``
row) and adds the new one (from the current ``persons`` row).
:func:`rebuild` recomputes everything from scratch (``tenure replay`` calls it after the
swap); the aggregates are computed there by SQL from the contributions, independently of
the incremental path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tenure.analytics.survival_contribution import (
    Cell,
    Contribution,
    Milestone,
    contribution_of,
    delta,
)
from tenure.errors import TenureError
from tenure.storage import derive_queue
from tenure.storage.arrays import array_literal, int_array, text_array
from tenure.storage.connection import Conn
from tenure.storage.staged_upsert import staged_upsert

__all__ = [
    "AGGREGATE_TABLES",
    "CONTRIBUTION_COLUMNS",
    "PERSON_INPUTS",
    "AggregateError",
    "drain",
    "read_aggregates",
    "read_contributions",
    "rebuild",
    "record_as_of",
]


AGGREGATE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "survival_tenure_closed": (("group_key", "text"), ("duration_day", "integer")),
    "survival_tenure_open": (
        ("group_key", "text"),
        ("duration_day", "integer"),
        ("last_day", "date"),
    ),
    "milestone_events": (("kind", "text"), ("group_key", "text"), ("duration_day", "integer")),
    "milestone_pending": (("kind", "text"), ("group_key", "text"), ("start_day", "date")),
    "retention_cohorts": (("group_key", "text"), ("cohort_week", "date")),
    "retention_on": (("group_key", "text"), ("cohort_week", "date"), ("week", "integer")),
    "retention_last": (("group_key", "text"), ("cohort_week", "date"), ("week", "integer")),
}
"""Aggregate tables: key columns with their SQL types; each also has a count ``n``."""

PERSON_INPUTS: tuple[str, ...] = (
    "person_id", "segment", "stage", "level", "tier", "entry_path", "products",
    "first_engagement_at", "last_engagement_at", "tenure_days", "cohort_week", "engaged_weeks",
    "first_paid_order_at", "second_paid_order_at", "first_use_at", "device_activation_at",
)  # fmt: skip
"""The ``persons`` columns a contribution depends on (the triggers watch the same ones)."""

CONTRIBUTION_COLUMNS: tuple[str, ...] = (
    "person_id", "groups", "tenure_days", "last_day", "churned", "activation_start",
    "activation_day", "conversion_start", "conversion_day", "repeat_start", "repeat_day",
    "cohort_week", "engaged_weeks",
)  # fmt: skip
"""Columns of ``survival_contributions``."""


class AggregateError(TenureError, RuntimeError):
    """Removing a contribution that was never added (the transaction is rolled back)."""


# advisory locks (namespace, hashtext(person_id))


def _milestone_cols(m: Milestone | None) -> tuple[Any, Any]:
    return (None, None) if m is None else (m.start, m.reached)


def contribution_row(person_id: str, c: Contribution) -> tuple[Any, ...]:
    """The ``survival_contributions`` row of a contribution (arrays as literals, for COPY)."""
    return (
        person_id, text_array(c.groups), c.tenure_days, c.last_day, c.churned,
        *_milestone_cols(c.activation), *_milestone_cols(c.conversion),
        *_milestone_cols(c.repeat), c.cohort_week, int_array(c.engaged_weeks),
    )  # fmt: skip


def _milestone(start: Any, reached: Any) -> Milestone | None:
    return None if start is None else Milestone(start, reached)


def contribution_from_row(row: Mapping[str, Any]) -> Contribution:
    """Read back a ``survival_contributions`` row."""
    return Contribution(
        groups=tuple(row["groups"]),
        tenure_days=row["tenure_days"],
        last_day=row["last_day"],
        churned=row["churned"],
        activation=_milestone(row["activation_start"], row["activation_day"]),
        conversion=_milestone(row["conversion_start"], row["conversion_day"]),
        repeat=_milestone(row["repeat_start"], row["repeat_day"]),
        cohort_week=row["cohort_week"],
        engaged_weeks=tuple(row["engaged_weeks"]),
    )


def _select(table: str, columns: Iterable[str]) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
    )


def _apply_counts(conn: Conn, change: Mapping[Cell, int]) -> None:
    """Add signed counts to the aggregate tables (sorted keys: a stable lock order)."""
    by_table: dict[str, list[tuple[tuple[Any, ...], int]]] = {}
    for (table, key), n in change.items():
        by_table.setdefault(table, []).append((key, n))
    for table in sorted(by_table):
        entries = sorted(by_table[table])
        keys = AGGREGATE_TABLES[table]
        names = [k for k, _ in keys]
        by_column = list(zip(*(key for key, _ in entries), strict=True))
        columns = [array_literal(by_column[i], t) for i, (_, t) in enumerate(keys)]
        counts = [n for _, n in entries]
        unnest = sql.SQL("unnest({})").format(
            sql.SQL(", ").join(
                sql.SQL("%s::{}[]").format(sql.SQL(t)) for _, t in (*keys, ("n", "bigint"))
            )
        )
        t = sql.Identifier(table)
        key_list = sql.SQL(", ").join(map(sql.Identifier, names))
        after = conn.execute(
            sql.SQL(
                "INSERT INTO {t} ({k}, n) SELECT * FROM {u} ON CONFLICT ({k})"
                " DO UPDATE SET n = {t}.n + EXCLUDED.n RETURNING n"
            ).format(t=t, k=key_list, u=unnest),
            (*columns, int_array(counts)),
        ).fetchall()
        if any(r[0] < 0 for r in after):
            raise AggregateError(f"{table}: a count went negative; the aggregates are corrupt")
        if all(n > 0 for n in counts):
            continue  # only a removal can bring a count to zero
        match = sql.SQL(" AND ").join(
            sql.SQL("{t}.{c} = u.{c}").format(t=t, c=sql.Identifier(c)) for c in names
        )
        conn.execute(
            sql.SQL("DELETE FROM {t} USING {u} AS u({k}, n) WHERE {m} AND {t}.n = 0").format(
                t=t, u=unnest, k=key_list, m=match
            ),
            (*columns, int_array(counts)),
        )


def _claim(conn: Conn, limit: int) -> list[str]:
    # A queue of marks, claimed oldest first as the derive queues are: the persons upsert's
    # trigger appends a mark and never waits for a drain that holds the person's earlier one.
    return derive_queue.claim_oldest(conn, "survival_dirty", "person_id", limit)


def read_contributions(conn: Conn, person_ids: list[str] | None = None) -> dict[str, Contribution]:
    """Stored contributions (of the given persons, or all)."""
    query = _select("survival_contributions", CONTRIBUTION_COLUMNS)
    params: tuple[Any, ...] = ()
    if person_ids is not None:
        query += sql.SQL(" WHERE person_id = ANY(%b)")
        params = (person_ids,)
    with conn.cursor(row_factory=dict_row) as cur:
        return {r["person_id"]: contribution_from_row(r) for r in cur.execute(query, params)}


def _persons(conn: Conn, person_ids: list[str]) -> dict[str, Contribution]:
    query = _select("persons", PERSON_INPUTS) + sql.SQL(" WHERE person_id = ANY(%b)")
    with conn.cursor(row_factory=dict_row) as cur:
        return {r["person_id"]: contribution_of(r) for r in cur.execute(query, (person_ids,))}


def drain(conn: Conn, *, limit: int = 2000) -> int:
    """Move one chunk of queued persons to their current contribution; return how many.

    One transaction: claim (the claim's key locks keep other drains off these persons until
    it ends), read old contributions and current persons rows, apply the summed deltas,
    store the new contributions. Runs under READ COMMITTED, so the statements after the
    claim see what a drain that held the same persons before committed.
    """
    with conn.transaction():
        person_ids = _claim(conn, limit)
        if not person_ids:
            return 0
        churned_by = _churned_by(conn, "FOR SHARE")
        old = read_contributions(conn, person_ids)
        new = _persons(conn, person_ids)
        change: dict[Cell, int] = {}
        for pid in person_ids:
            for cell, n in delta(old.get(pid), new.get(pid)).items():
                change[cell] = change.get(cell, 0) + n
        _apply_counts(conn, {c: n for c, n in change.items() if n})
        if churned_by is not None:
            _apply_now(conn, change, churned_by)
        gone = sorted(set(old) - set(new))
        if gone:
            conn.execute("DELETE FROM survival_contributions WHERE person_id = ANY(%b)", (gone,))
        changed = [pid for pid in sorted(new) if old.get(pid) != new[pid]]
        if changed:
            rows = [contribution_row(pid, new[pid]) for pid in changed]
            staged_upsert(conn, "survival_contributions", "person_id", CONTRIBUTION_COLUMNS, rows)
        return len(person_ids)


def _churned_by(conn: Conn, lock: str) -> date | None:
    """Last engagement day that counts as churned at the state's as-of day (``None``: unset).

    ``lock`` is ``FOR SHARE`` (drains, which classify by it) or ``FOR UPDATE`` (moving it).
    """
    row = conn.execute(
        "SELECT (as_of AT TIME ZONE 'UTC')::date - churn_window_days FROM survival_state " + lock
    ).fetchone()
    return None if row is None or row[0] is None else row[0]


def _apply_now(conn: Conn, change: Mapping[Cell, int], churned_by: date) -> None:
    """Mirror tenure cell changes into ``survival_tenure_now`` (state day ``churned_by + W``)."""
    now: dict[tuple[str, int], list[int]] = {}
    for (table, key), n in change.items():
        if table == "survival_tenure_closed" or (
            table == "survival_tenure_open" and key[2] <= churned_by
        ):
            now.setdefault((key[0], key[1]), [0, 0])[0] += n
        elif table == "survival_tenure_open":
            now.setdefault((key[0], key[1]), [0, 0])[1] += n
    entries = sorted((k, v) for k, v in now.items() if v != [0, 0])
    if not entries:
        return
    after = conn.execute(
        "INSERT INTO survival_tenure_now (group_key, duration_day, events, censored)"
        " SELECT * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::bigint[])"
        " ON CONFLICT (group_key, duration_day) DO UPDATE SET"
        " events = survival_tenure_now.events + EXCLUDED.events,"
        " censored = survival_tenure_now.censored + EXCLUDED.censored"
        " RETURNING events, censored",
        (
            text_array(k[0] for k, _ in entries), int_array(k[1] for k, _ in entries),
            int_array(v[0] for _, v in entries), int_array(v[1] for _, v in entries),
        ),
    ).fetchall()  # fmt: skip
    if any(e < 0 or c < 0 for e, c in after):
        raise AggregateError("survival_tenure_now: a count went negative")
    shrunk = [k for k, v in entries if min(v) < 0]
    if shrunk:
        conn.execute(
            "DELETE FROM survival_tenure_now t USING unnest(%b::text[], %b::integer[]) u(g, d)"
            " WHERE t.group_key = u.g AND t.duration_day = u.d AND t.events = 0"
            " AND t.censored = 0",
            ([k[0] for k in shrunk], [k[1] for k in shrunk]),
        )


_NOW_FROM_SCRATCH = (
    "INSERT INTO survival_tenure_now (group_key, duration_day, events, censored)"
    " SELECT group_key, duration_day, sum(e), sum(c) FROM ("
    " SELECT group_key, duration_day, n AS e, 0 AS c FROM survival_tenure_closed"
    " UNION ALL SELECT group_key, duration_day,"
    " CASE WHEN last_day <= %(by)s THEN n ELSE 0 END,"
    " CASE WHEN last_day <= %(by)s THEN 0 ELSE n END"
    " FROM survival_tenure_open) t GROUP BY 1, 2"
)


def _recompute_now(conn: Conn) -> None:
    conn.execute("TRUNCATE survival_tenure_now")
    by = _churned_by(conn, "")
    if by is not None:
        conn.execute(_NOW_FROM_SCRATCH, {"by": by})


def record_as_of(conn: Conn, as_of: datetime | None, churn_window_days: int) -> None:
    """Move the aggregates' default as-of instant forward (never back) and record W.

    When its UTC day advances, people not churned when derived whose last engagement day
    has now fallen ``W`` days behind move from censored to events in
    ``survival_tenure_now`` (a few rows per day crossed).
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT as_of, churn_window_days, (as_of AT TIME ZONE 'UTC')::date - churn_window_days"
            " FROM survival_state FOR UPDATE"
        ).fetchone()
        if row is None or as_of is None:
            return
        old_as_of, old_window, old_by = row
        if old_as_of is not None and as_of <= old_as_of and churn_window_days == old_window:
            return
        conn.execute(
            "UPDATE survival_state SET as_of = greatest(as_of, %s), churn_window_days = %s",
            (as_of, churn_window_days),
        )
        new_by = _churned_by(conn, "")
        if old_by is None or churn_window_days != old_window:
            _recompute_now(conn)
        elif new_by is not None and new_by > old_by:
            conn.execute(
                "INSERT INTO survival_tenure_now AS t (group_key, duration_day, events, censored)"
                " SELECT group_key, duration_day, sum(n), -sum(n) FROM survival_tenure_open"
                " WHERE last_day > %s AND last_day <= %s GROUP BY 1, 2"
                " ON CONFLICT (group_key, duration_day) DO UPDATE SET"
                " events = t.events + EXCLUDED.events, censored = t.censored + EXCLUDED.censored",
                (old_by, new_by),
            )


_CONTRIBUTIONS_FROM_PERSONS = """
INSERT INTO survival_contributions (person_id, groups, tenure_days, last_day, churned,
    activation_start, activation_day, conversion_start, conversion_day, repeat_start,
    repeat_day, cohort_week, engaged_weeks)
SELECT person_id,
    ARRAY(SELECT DISTINCT g COLLATE "C" FROM unnest(ARRAY['all', 'entry:' || entry_path,
              'segment:' || segment, 'stage:' || stage, 'level:' || level, 'tier:' || tier,
              'cohort:' || to_char(cohort_week, 'YYYY-MM-DD')]
              || ARRAY(SELECT 'product:' || p FROM unnest(products) p)) g
          WHERE g IS NOT NULL ORDER BY 1),
    CASE WHEN engaged THEN tenure_days END,
    CASE WHEN engaged THEN (last_engagement_at AT TIME ZONE 'UTC')::date END,
    CASE WHEN engaged THEN stage = 'churned' END,
    CASE WHEN buyer THEN paid_day END, CASE WHEN buyer THEN activation END,
    CASE WHEN user_entry THEN use_day END, CASE WHEN user_entry THEN paid_day END,
    paid_day, CASE WHEN paid_day IS NOT NULL THEN second_day END,
    cohort_week, ARRAY(SELECT DISTINCT w FROM unnest(engaged_weeks) w ORDER BY 1)
FROM (
    SELECT p.*,
        first_engagement_at IS NOT NULL AND last_engagement_at IS NOT NULL AS engaged,
        first_paid_order_at IS NOT NULL
            AND (first_use_at IS NULL OR first_paid_order_at <= first_use_at) AS buyer,
        first_use_at IS NOT NULL AND entry_path = 'non_paying_user' AS user_entry,
        (first_paid_order_at AT TIME ZONE 'UTC')::date AS paid_day,
        (second_paid_order_at AT TIME ZONE 'UTC')::date AS second_day,
        (first_use_at AT TIME ZONE 'UTC')::date AS use_day,
        (device_activation_at AT TIME ZONE 'UTC')::date AS activation
    FROM persons p
) s
"""
"""Every person's contribution in SQL: the same rules as ``contribution_of`` (the tests
compare the two), used by the from-scratch rebuild where Python per row is too slow."""

_FROM_SCRATCH: tuple[str, ...] = (
    "INSERT INTO survival_tenure_closed (group_key, duration_day, n)"
    " SELECT g, tenure_days, count(*) FROM survival_contributions, unnest(groups) g"
    " WHERE tenure_days IS NOT NULL AND last_day IS NOT NULL AND churned GROUP BY 1, 2",
    "INSERT INTO survival_tenure_open (group_key, duration_day, last_day, n)"
    " SELECT g, tenure_days, last_day, count(*) FROM survival_contributions, unnest(groups) g"
    " WHERE tenure_days IS NOT NULL AND last_day IS NOT NULL AND NOT churned"
    " GROUP BY 1, 2, 3",
    "INSERT INTO milestone_events (kind, group_key, duration_day, n)"
    " SELECT m.kind, g, greatest(0, m.reached - m.start), count(*)"
    " FROM survival_contributions c, unnest(c.groups) g, LATERAL (VALUES"
    " ('activation', c.activation_start, c.activation_day),"
    " ('conversion', c.conversion_start, c.conversion_day),"
    " ('repeat', c.repeat_start, c.repeat_day)) m(kind, start, reached)"
    " WHERE m.start IS NOT NULL AND m.reached IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO milestone_pending (kind, group_key, start_day, n)"
    " SELECT m.kind, g, m.start, count(*)"
    " FROM survival_contributions c, unnest(c.groups) g, LATERAL (VALUES"
    " ('activation', c.activation_start, c.activation_day),"
    " ('conversion', c.conversion_start, c.conversion_day),"
    " ('repeat', c.repeat_start, c.repeat_day)) m(kind, start, reached)"
    " WHERE m.start IS NOT NULL AND m.reached IS NULL GROUP BY 1, 2, 3",
    "INSERT INTO retention_cohorts (group_key, cohort_week, n)"
    " SELECT g, cohort_week, count(*) FROM survival_contributions, unnest(groups) g"
    " WHERE cohort_week IS NOT NULL AND g NOT LIKE 'cohort:%' GROUP BY 1, 2",
    "INSERT INTO retention_on (group_key, cohort_week, week, n)"
    " SELECT g, cohort_week, w, count(*) FROM survival_contributions, unnest(groups) g,"
    " unnest(engaged_weeks) w"
    " WHERE cohort_week IS NOT NULL AND g NOT LIKE 'cohort:%' GROUP BY 1, 2, 3",
    "INSERT INTO retention_last (group_key, cohort_week, week, n)"
    " SELECT g, cohort_week, engaged_weeks[cardinality(engaged_weeks)], count(*)"
    " FROM survival_contributions, unnest(groups) g"
    " WHERE cohort_week IS NOT NULL AND cardinality(engaged_weeks) > 0"
    " AND g NOT LIKE 'cohort:%' GROUP BY 1, 2, 3",
)


def rebuild(conn: Conn, as_of: datetime | None, churn_window_days: int | None = None) -> int:
    """Recompute contributions and aggregates from the ``persons`` table from scratch, in SQL.

    Runs in the caller's transaction (``read_models.rebuild`` calls it right after the swap,
    so readers see old tables and old aggregates, or new and new). Also re-installs the
    triggers on the (new) persons table and empties the queue. ``churn_window_days`` of
    ``None`` keeps the recorded W. Returns the persons read.
    """
    conn.execute("SELECT survival_install_triggers()")
    tables = ["survival_dirty", "survival_contributions", "survival_tenure_now", *AGGREGATE_TABLES]
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
    n = conn.execute(_CONTRIBUTIONS_FROM_PERSONS).rowcount
    for statement in _FROM_SCRATCH:
        conn.execute(statement.encode())
    conn.execute(
        "UPDATE survival_state SET as_of = %s, churn_window_days = coalesce(%s, churn_window_days)",
        (as_of, churn_window_days),
    )
    _recompute_now(conn)
    return n


def read_aggregates(conn: Conn) -> dict[Cell, int]:
    """Every aggregate cell with its count (for tests and audits)."""
    counts: dict[Cell, int] = {}
    for table, keys in AGGREGATE_TABLES.items():
        names = [k for k, _ in keys]
        for row in conn.execute(_select(table, (*names, "n"))).fetchall():
            if row[-1]:
                counts[(table, tuple(row[:-1]))] = int(row[-1])
    return counts
