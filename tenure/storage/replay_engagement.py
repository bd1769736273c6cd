"""Each replayed person's engagement days, held in a temporary table of the replay's writing
session between the parts it folds and the churn model's rebuild (so the replay never holds
every person's days in memory at once). Days are stored as their ordinals, comma-separated
(a third of the cost of copying a ``date[]``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import psycopg

PAGE = 20_000
"""Persons read back at a time."""


def create(conn: psycopg.Connection[Any]) -> None:
    """Create the (empty) session table; :func:`drop` removes it."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS replay_engagement"
        " (person_id text PRIMARY KEY, days text NOT NULL)"
    )
    conn.execute("TRUNCATE replay_engagement")


def add(conn: psycopg.Connection[Any], people: Iterable[tuple[str, Sequence[date]]]) -> int:
    """Add ``(person id, engagement days)`` rows (each person once); return how many."""
    n = 0
    with conn.cursor().copy("COPY replay_engagement (person_id, days) FROM STDIN") as copy:
        for person_id, days in people:
            copy.write_row((person_id, ",".join(str(day.toordinal()) for day in days)))
            n += 1
    return n


def read(conn: psycopg.Connection[Any]) -> Iterator[tuple[str, list[date]]]:
    """Every row by person id, :data:`PAGE` at a time."""
    after: str | None = None
    while True:
        rows = conn.execute(
            "SELECT person_id, days FROM replay_engagement"
            " WHERE %s::text IS NULL OR person_id > %s ORDER BY person_id LIMIT %s",
            (after, after, PAGE),
        ).fetchall()
        if not rows:
            return
        for person_id, days in rows:
            yield str(person_id), [date.fromordinal(int(n)) for n in days.split(",") if n]
        after = str(rows[-1][0])


def contribute(conn: psycopg.Connection[Any], group: str) -> int:
    """Add every staged person with days to the churn model's contributions
    (``churn_gap_contributions``, filed in ``group``: days sorted, each once), in SQL; return
    how many. The counts are the caller's (:func:`tenure.storage.churn_model.replace_counts`)."""
    cursor = conn.execute(
        "INSERT INTO churn_gap_contributions (person_id, grp, days)"
        " SELECT person_id, %s, ARRAY(SELECT DISTINCT date '0001-01-01' + (n - 1)"
        " FROM unnest(string_to_array(days, ',')::integer[]) AS n ORDER BY 1)"
        " FROM replay_engagement WHERE days <> ''",
        (group,),
    )
    return cursor.rowcount


def drop(conn: psycopg.Connection[Any]) -> None:
    """Remove the session table."""
    conn.execute("DROP TABLE IF EXISTS replay_engagement")
