"""The live return-time counts in Postgres: the churn model as a projection of the log.

:func:`record_person` moves one person's gap filing (``tenure.analytics.return_times``)
from what was last added (``churn_gap_contributions``) to what their engagement days say
now, in the caller's transaction, under a per-person advisory lock: subtract the old
counts, add the new ones. ``days=None`` removes the person (erasure). The counts never
depend on ``as_of``; :func:`read_model` reads the open gaps' ages at the ``as_of`` asked,
so the model, like every derived view, is a pure function of (log, as_of).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import psycopg

from tenure.analytics.return_times import (
    ALL,
    DEFAULT_SHRINKAGE,
    PersonGaps,
    ReturnBucket,
    ReturnTimeCounts,
    ReturnTimeModel,
    fit,
    person_gaps,
)
from tenure.domain.activity import engagement_days
from tenure.domain.person import PersonState

__all__ = [
    "histories_of",
    "read_counts",
    "read_histories",
    "read_model",
    "rebuild",
    "record_person",
]

Conn = psycopg.Connection[Any]

_LOCK_NAMESPACE = 0x5E7B


def _apply(conn: Conn, gaps: PersonGaps, sign: int) -> None:
    returns: Counter[tuple[str, int]] = Counter()
    for bucket, length in gaps.closed:
        returns[(bucket.key, length)] += sign
    with conn.cursor() as cur:
        for (key, length), n in sorted(returns.items()):
            cur.execute(
                "INSERT INTO churn_return_counts AS c (bucket, length, n) VALUES (%s, %s, %s)"
                " ON CONFLICT (bucket, length) DO UPDATE SET n = c.n + EXCLUDED.n",
                (key, length, n),
            )
            cur.execute(
                "DELETE FROM churn_return_counts WHERE bucket = %s AND length = %s AND n = 0",
                (key, length),
            )
        if gaps.open_bucket is not None and gaps.open_since is not None:
            cur.execute(
                "INSERT INTO churn_open_gaps AS o (bucket, since, n) VALUES (%s, %s, %s)"
                " ON CONFLICT (bucket, since) DO UPDATE SET n = o.n + EXCLUDED.n",
                (gaps.open_bucket.key, gaps.open_since, sign),
            )
            cur.execute(
                "DELETE FROM churn_open_gaps WHERE bucket = %s AND since = %s AND n = 0",
                (gaps.open_bucket.key, gaps.open_since),
            )


def record_person(
    conn: Conn, person_id: str, days: Iterable[date] | None, group: str = ALL
) -> None:
    """Make the counts reflect ``person_id``'s engagement ``days`` (``None``: forget them).

    Runs in the caller's transaction; the counts change together with the person's row.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, person_id))
        old = conn.execute(
            "SELECT grp, days FROM churn_gap_contributions WHERE person_id = %s FOR UPDATE",
            (person_id,),
        ).fetchone()
        known = None if days is None else sorted(set(days))
        if old is not None:
            if known is not None and old[0] == group and list(old[1]) == known:
                return  # nothing changed
            _apply(conn, person_gaps(old[1], old[0]), -1)
        if not known:
            conn.execute("DELETE FROM churn_gap_contributions WHERE person_id = %s", (person_id,))
            return
        _apply(conn, person_gaps(known, group), 1)
        conn.execute(
            "INSERT INTO churn_gap_contributions (person_id, grp, days) VALUES (%s, %s, %s)"
            " ON CONFLICT (person_id) DO UPDATE SET grp = EXCLUDED.grp, days = EXCLUDED.days",
            (person_id, group, known),
        )


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


def read_model(conn: Conn, as_of: date, shrinkage: float = DEFAULT_SHRINKAGE) -> ReturnTimeModel:
    """The return-time model of the live counts with open gaps aged at ``as_of``."""
    return fit(read_counts(conn), as_of, shrinkage)


def rebuild(conn: Conn, people: Iterable[tuple[str, Iterable[date], str]]) -> int:
    """Replace every count by those of ``people`` (person id, engagement days, group).

    What ``tenure replay`` would call after rebuilding the persons; returns how many people
    were counted.
    """
    with conn.transaction():
        conn.execute("TRUNCATE churn_gap_contributions, churn_return_counts, churn_open_gaps")
        counted = 0
        for person_id, days, group in people:
            record_person(conn, person_id, days, group)
            counted += 1
    return counted


def histories_of(
    persons: Mapping[str, PersonState], as_of: datetime
) -> Iterator[tuple[str, list[date], str]]:
    """Every non-erased person's engagement days known at ``as_of`` (for :func:`rebuild`)."""
    for person_id, state in sorted(persons.items()):
        if not state.erased:
            yield person_id, list(engagement_days(state, as_of)), ALL
