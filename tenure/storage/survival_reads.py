"""Read the live aggregates as of an instant: life tables and cohort rows per group.

Nothing here scans ``persons``: every function reads a handful of aggregate rows of one
group. Time moves only two things, resolved at read time from the as-of UTC day ``T``:

* tenure: a person not churned when derived counts as an event at ``T`` once
  ``last_day <= T - W`` (``survival_tenure_open``), else as censored at the same duration;
* milestones: people who have not reached it are censored at ``T - start_day``
  (``milestone_pending`` holds them per start day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tenure.analytics.cohorts import CohortRow
from tenure.analytics.lifetable import LifeTable
from tenure.storage.connection import Conn

__all__ = [
    "AggregateState",
    "aggregate_state",
    "cohort_rows",
    "milestone_table",
    "tenure_table",
]

_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class AggregateState:
    """The default as-of instant of the aggregates and the churn window they use."""

    as_of: datetime | None
    churn_window_days: int


def aggregate_state(conn: Conn) -> AggregateState:
    """Where the aggregates stand."""
    row = conn.execute("SELECT as_of, churn_window_days FROM survival_state").fetchone()
    if row is None:
        return AggregateState(None, 30)
    return AggregateState(row[0], int(row[1]))


def _table(rows: list[tuple[Any, ...]]) -> LifeTable:
    counts: dict[int, tuple[int, int]] = {}
    for day, events, censored in rows:
        e, c = counts.get(int(day), (0, 0))
        counts[int(day)] = (e + int(events), c + int(censored))
    return LifeTable.from_dict(counts)


def tenure_table(conn: Conn, group: str, as_of_day: date, state: AggregateState) -> LifeTable:
    """Tenure life table of one group as of UTC day ``as_of_day`` (not before the state's).

    At the state's own day this reads ``survival_tenure_now`` (one row per duration day);
    at a later day it re-judges the people not churned when derived.
    """
    if state.as_of is not None and as_of_day == state.as_of.astimezone(UTC).date():
        rows = conn.execute(
            "SELECT duration_day, events, censored FROM survival_tenure_now WHERE group_key = %s",
            (group,),
        ).fetchall()
        return _table(rows)
    churned_by = as_of_day - timedelta(days=state.churn_window_days)
    rows = conn.execute(
        "SELECT duration_day, n, 0 FROM survival_tenure_closed WHERE group_key = %s"
        " UNION ALL SELECT duration_day, sum(n) FILTER (WHERE last_day <= %s),"
        " sum(n) FILTER (WHERE last_day > %s) FROM survival_tenure_open WHERE group_key = %s"
        " GROUP BY duration_day",
        (group, churned_by, churned_by, group),
    ).fetchall()
    return _table([(d, e or 0, c or 0) for d, e, c in rows])


def milestone_table(conn: Conn, kind: str, group: str, as_of_day: date) -> LifeTable:
    """Time-to-milestone life table of one group as of UTC day ``as_of_day``."""
    rows = conn.execute(
        "SELECT duration_day, n, 0 FROM milestone_events WHERE kind = %s AND group_key = %s"
        " UNION ALL SELECT %s::date - start_day, 0, n FROM milestone_pending"
        " WHERE kind = %s AND group_key = %s AND start_day <= %s",
        (kind, group, as_of_day, kind, group, as_of_day),
    ).fetchall()
    return _table(rows)


def cohort_rows(conn: Conn, group: str, as_of_day: date) -> list[CohortRow]:
    """Weekly cohort rows of one group; ``cohort:<monday>`` is that row of group ``all``.

    Each row covers the weeks that have started by ``as_of_day`` (at least week 0).
    """
    where = "group_key = %s"
    params: tuple[Any, ...] = (group,)
    if group.startswith("cohort:"):
        where = "group_key = 'all' AND cohort_week = %s"
        params = (date.fromisoformat(group.removeprefix("cohort:")),)
    sizes = conn.execute(
        f"SELECT cohort_week, n FROM retention_cohorts WHERE {where} ORDER BY cohort_week",
        params,
    ).fetchall()
    # Per cohort (as days since the epoch: ints parse fast), weeks and counts as arrays.
    on: dict[int, tuple[list[int], list[int]]] = {}
    last: dict[int, tuple[list[int], list[int]]] = {}
    for is_on, cohort, weeks_of, counts in conn.execute(
        "SELECT is_on, cohort_week - DATE '1970-01-01', array_agg(week ORDER BY week),"
        " array_agg(n ORDER BY week) FROM ("
        f" SELECT true AS is_on, cohort_week, week, n FROM retention_on WHERE {where}"
        f" UNION ALL SELECT false, cohort_week, week, n FROM retention_last WHERE {where}"
        ") c GROUP BY 1, 2",
        params + params,
    ).fetchall():
        (on if is_on else last)[cohort] = (weeks_of, counts)
    rows: list[CohortRow] = []
    for cohort, size in sizes:
        if not size:
            continue
        key = (cohort - _EPOCH).days
        weeks = max(1, (as_of_day - cohort).days // 7 + 1)
        ons = [0] * weeks
        for w, n in zip(*on.get(key, ((), ())), strict=True):
            if w < weeks:
                ons[w] = n
        after = [0] * (weeks + 1)
        beyond = 0
        for w, n in zip(*last.get(key, ((), ())), strict=True):
            if w < weeks:
                after[w] = n
            else:
                beyond += n
        after[weeks] = beyond
        for k in range(weeks - 1, -1, -1):
            after[k] += after[k + 1]
        rows.append(CohortRow(cohort, int(size), tuple(ons), tuple(after[:weeks])))
    return rows
