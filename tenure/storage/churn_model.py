"""The live return-time counts in Postgres: the churn model as a projection of the log.

The derive pass queues each person it derives with their engagement days
(:func:`queue_people`, one insert of a mark each into ``churn_pending``: no shared row is
touched on the hot path, and no drain is waited for). The aggregates stage :func:`drain` s
the queue: for each claimed person it moves their gap filing
(``tenure.analytics.return_time_filing``) from what was last added
(``churn_gap_contributions``) to what their days say now, subtracting the old counts and
adding the new ones in one transaction, count rows in key order (no deadlocks between
drains). ``days=None`` removes the person (erasure). The counts never depend on ``as_of``;
:func:`read_model` reads the open gaps' ages at the ``as_of`` asked, so the model, like
every derived view, is a pure function of (log, as_of). :func:`rebuild` recomputes
everything (``tenure replay``).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from tenure.analytics.churn_risk import ChurnRiskTable
from tenure.analytics.return_time_filing import Filing, Person, filing_change
from tenure.analytics.return_times import (
    ALL,
    DEFAULT_SHRINKAGE,
    ReturnBucket,
    ReturnTimeCounts,
    ReturnTimeModel,
    fit,
)
from tenure.storage import derive_queue
from tenure.storage.arrays import array_literal, date_array, int_array, text_array
from tenure.storage.churn_risk import model_version, renew_model_version
from tenure.storage.connection import Conn

__all__ = [
    "drain",
    "queue_people",
    "read_counts",
    "read_histories",
    "read_model",
    "read_pending",
    "read_risk_table",
    "rebuild",
    "record_people",
    "record_person",
    "replace_counts",
]


def _apply_counts(conn: Conn, table: str, column: str, kind: str, change: Counter[Any]) -> None:
    """Add signed counts to ``table`` in key order; drop the rows that reach zero."""
    rows = [(key, value, n) for (key, value), n in sorted(change.items()) if n]
    if not rows:
        return
    keys = text_array(k for k, _, _ in rows)
    values = array_literal([v for _, v, _ in rows], kind)
    conn.execute(
        f"INSERT INTO {table} AS t (bucket, {column}, n) SELECT * FROM unnest(%s::text[],"
        f" %s::{kind}[], %s::bigint[]) ON CONFLICT (bucket, {column}) DO UPDATE"
        " SET n = t.n + EXCLUDED.n",
        (keys, values, int_array(n for _, _, n in rows)),
    )
    conn.execute(
        f"DELETE FROM {table} t USING unnest(%s::text[], %s::{kind}[]) AS u(bucket, value)"
        f" WHERE t.bucket = u.bucket AND t.{column} = u.value AND t.n = 0",
        (keys, values),
    )


def _upsert_days(
    conn: Conn, table: str, rows: Sequence[tuple[str, str, Sequence[date] | None]]
) -> None:
    """Insert or replace ``(person_id, grp, days)`` rows of ``table`` in one statement."""
    conn.execute(
        f"INSERT INTO {table} (person_id, grp, days) SELECT p, g, d::date[] FROM"
        " unnest(%s::text[], %s::text[], %s::text[]) AS u(p, g, d) ON CONFLICT (person_id)"
        " DO UPDATE SET grp = EXCLUDED.grp, days = EXCLUDED.days",
        (
            text_array(r[0] for r in rows),
            text_array(r[1] for r in rows),
            text_array(None if r[2] is None else date_array(r[2]) for r in rows),
        ),
    )


def record_people(conn: Conn, people: Iterable[Person]) -> int:
    """Make the counts reflect each person's days (``None``: forget them); return how many.

    Runs in one transaction (the caller's, if any). A person listed twice: the last wins.
    """
    latest: dict[str, tuple[list[date] | None, str]] = {}
    for person_id, days, group in people:
        latest[person_id] = (None if days is None else sorted(set(days)), group)
    if not latest:
        return 0
    ids = sorted(latest)
    returns: Counter[Any] = Counter()
    opened: Counter[Any] = Counter()
    upserts: list[tuple[str, str, list[date]]] = []
    removed: list[str] = []
    with conn.transaction():
        old = {
            pid: (grp, list(days))
            for pid, grp, days in conn.execute(
                "SELECT person_id, grp, days FROM churn_gap_contributions"
                " WHERE person_id = ANY(%s) ORDER BY person_id FOR UPDATE",
                (ids,),
            )
        }
        for pid in ids:
            days, group = latest[pid]
            before = old.get(pid)
            if before is not None and days is not None and before == (group, days):
                continue  # nothing changed
            filing_change(before, (group, days) if days else None, returns, opened)
            if days:
                upserts.append((pid, group, days))
            elif before is not None:
                removed.append(pid)
        _apply_counts(conn, "churn_return_counts", "length", "integer", returns)
        _apply_counts(conn, "churn_open_gaps", "since", "date", opened)
        if any(returns.values()) or any(opened.values()):
            renew_model_version(conn)
        if upserts:
            _upsert_days(conn, "churn_gap_contributions", upserts)
        if removed:
            conn.execute(
                "DELETE FROM churn_gap_contributions WHERE person_id = ANY(%s)", (removed,)
            )
    return len(ids)


def replace_counts(conn: Conn, filing: Filing) -> None:
    """Replace every count by ``filing``'s and forget every person's contribution, in the
    caller's transaction; the caller then adds the contributions of the persons filed
    (``tenure replay``'s worker processes file their parts: :func:`rebuild` with the
    filing done elsewhere)."""
    conn.execute("TRUNCATE churn_gap_contributions, churn_return_counts, churn_open_gaps")
    renew_model_version(conn)
    _apply_counts(conn, "churn_return_counts", "length", "integer", filing.returns)
    _apply_counts(conn, "churn_open_gaps", "since", "date", filing.opened)


def record_person(
    conn: Conn, person_id: str, days: Iterable[date] | None, group: str = ALL
) -> None:
    """:func:`record_people` for one person."""
    record_people(conn, [(person_id, days, group)])


def queue_people(conn: Conn, people: Iterable[Person]) -> int:
    """Queue people for :func:`drain` (the derive pass's hook); return how many.

    One insert of a mark per person into ``churn_pending`` (a queue of marks, migration
    0026: it never waits for a drain holding the person's earlier mark); a person's last
    queued mark wins.
    """
    latest = {
        pid: (group, None if days is None else sorted(set(days))) for pid, days, group in people
    }
    if latest:
        pids = sorted(latest)
        conn.execute(
            "INSERT INTO churn_pending (person_id, grp, days) SELECT p, g, d::date[] FROM"
            " unnest(%s::text[], %s::text[], %s::text[]) AS u(p, g, d)",
            (
                text_array(pids),
                text_array(latest[p][0] for p in pids),
                text_array(None if (d := latest[p][1]) is None else date_array(d) for p in pids),
            ),
        )
    return len(latest)


def read_pending(conn: Conn) -> dict[str, tuple[str, list[date] | None]]:
    """The queued people: person id -> (group, sorted days, or ``None`` to remove them), as
    their last queued mark says."""
    rows = conn.execute(
        "SELECT DISTINCT ON (person_id) person_id, grp, days FROM churn_pending"
        " ORDER BY person_id, seq DESC"
    )
    return {pid: (grp, None if days is None else list(days)) for pid, grp, days in rows}


def drain(conn: Conn, limit: int = 2000) -> int:
    """Move up to ``limit`` queued people into the counts, in one transaction.

    The people queued longest are claimed with every mark of theirs and a key lock each
    (``derive_queue.claim_oldest_rows``: a person another drain holds is skipped); each
    person's last mark (highest ``seq``) is what is recorded.
    """
    with conn.transaction():
        claimed = derive_queue.claim_oldest_rows(
            conn, "churn_pending", "person_id", limit, ("days", "grp")
        )
        last: dict[str, tuple[int, Any, str]] = {}
        for pid, seq, days, grp in claimed:
            if pid not in last or seq > last[pid][0]:
                last[pid] = (seq, days, grp)
        record_people(conn, ((pid, days, grp) for pid, (_, days, grp) in sorted(last.items())))
    return len(last)


def read_histories(conn: Conn) -> list[tuple[list[date], str]]:
    """Every person's engagement days and group as last recorded (for the backtest)."""
    rows = conn.execute("SELECT days, grp FROM churn_gap_contributions ORDER BY person_id")
    return [(list(days), grp) for days, grp in rows]


def read_counts(conn: Conn) -> ReturnTimeCounts:
    """The live counts."""
    counts = ReturnTimeCounts()
    for key, length, n in conn.execute("SELECT bucket, length, n FROM churn_return_counts"):
        counts.returns.setdefault(ReturnBucket.parse(key), Counter())[int(length)] = int(n)
    for key, since, n in conn.execute("SELECT bucket, since, n FROM churn_open_gaps"):
        counts.open_since.setdefault(ReturnBucket.parse(key), Counter())[since] = int(n)
    return counts


_FITTED: dict[tuple[str, date, float], ReturnTimeModel] = {}
"""Models fitted in this process, by (counts version, as_of, shrinkage): a few, newest last."""
_FITTED_KEPT = 8
REBUILD_BATCH = 20_000
"""People :func:`rebuild` counts at a time."""
_FITTED_LOCK = threading.Lock()


def read_model(conn: Conn, as_of: date, shrinkage: float = DEFAULT_SHRINKAGE) -> ReturnTimeModel:
    """The return-time model of the live counts with open gaps aged at ``as_of``.

    Fitting takes tens of milliseconds, so a model is reused while the counts keep their
    version (``churn_model_version``, renewed by every change): kept only when the version
    read before and after the counts agree (always, in a repeatable-read transaction).
    """
    before = model_version(conn)
    if before is not None and (cached := _FITTED.get((before, as_of, shrinkage))) is not None:
        return cached
    model = fit(read_counts(conn), as_of, shrinkage)
    if before is not None and model_version(conn) == before:
        with _FITTED_LOCK:  # the query service reads from several threads
            _FITTED[(before, as_of, shrinkage)] = model
            while len(_FITTED) > _FITTED_KEPT:
                del _FITTED[next(iter(_FITTED))]
    return model


def read_risk_table(conn: Conn, as_of: date, window_days: int) -> ChurnRiskTable:
    """The churn risk of everyone at UTC day ``as_of``: the live model read there."""
    return ChurnRiskTable(read_model(conn, as_of), as_of, window_days)


def rebuild(conn: Conn, people: Iterable[Person]) -> int:
    """Replace every count by those of ``people``; return how many were counted.

    What ``tenure replay`` calls after rebuilding the persons.
    ``people`` is read :data:`REBUILD_BATCH` at a time (each person at most once), so a
    replay's population is never held whole.
    """
    counted = 0
    with conn.transaction():
        conn.execute("TRUNCATE churn_gap_contributions, churn_return_counts, churn_open_gaps")
        renew_model_version(conn)
        rest = iter(people)
        while batch := list(itertools.islice(rest, REBUILD_BATCH)):
            counted += record_people(conn, batch)
    return counted
