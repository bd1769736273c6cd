"""Churn risk in SQL: filtering ``persons`` by risk without evaluating the model per row,
and the version of the return-time counts (so readers can reuse a fitted model).

The churn risk is computed at read time (``tenure/analytics/churn_risk.py``) and is
non-decreasing in the silence, so "risk at least x at as_of" is, per return-time bucket,
"last engagement day on or before a cutoff day". The caller computes the cutoffs once per
request (:meth:`ChurnRiskTable.last_day_cutoffs`, a few dozen buckets) and this module turns
them into one condition on each row's stored inputs: the bucket in ``churn_inputs`` and the
UTC day of ``last_engagement_at``. A bucket of a group the model does not know reads the
curve of the same rhythm and experience in every group (``*/rhythm/experience``), as the
model itself does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

__all__ = [
    "count_at_least",
    "latest_person_as_of",
    "model_version",
    "renew_model_version",
    "risk_at_least",
]

_CONDITION = sql.SQL(
    "(last_engagement_at AT TIME ZONE 'UTC')::date <= coalesce("
    "{cutoffs} ->> (churn_inputs ->> 'bucket'), "
    "{cutoffs} ->> regexp_replace(churn_inputs ->> 'bucket', '^.*/([^/]+/[^/]+)$', '*/\\1')"
    ")::date"
)


def risk_at_least(cutoffs: Mapping[str, date]) -> sql.Composable:
    """A ``WHERE`` condition on ``persons``: the rows whose churn risk reaches the threshold
    the ``cutoffs`` (bucket key -> latest last-engagement day) were computed for.

    No cutoff at all (the model has learned nothing): ``false``. Rows without engagement
    (no bucket, no last day) never match. Give every bucket a cutoff (``date.min`` for
    "never"): the fallback to ``*/rhythm/experience`` is then only evaluated for groups the
    model does not know.
    """
    if not cutoffs:
        return sql.SQL("false")
    payload = orjson.dumps({key: day.isoformat() for key, day in cutoffs.items()}).decode()
    return _CONDITION.format(cutoffs=sql.SQL("{}::jsonb").format(sql.Literal(payload)))


def latest_person_as_of(conn: psycopg.Connection[Any]) -> datetime | None:
    """The latest as-of of any ``persons`` row (the list's as-of before the aggregates have
    one; one scan, only until their first pass)."""
    row = conn.execute("SELECT max(as_of) FROM persons").fetchone()
    return None if row is None else row[0]


def count_at_least(
    conn: psycopg.Connection[Any], cutoffs: Mapping[str, date], engaged_after: date
) -> int:
    """How many persons reach the ``cutoffs`` with a last engagement day after
    ``engaged_after`` (``as_of - W``: not churned). One scan of ``persons``."""
    query = sql.SQL(
        "SELECT count(*) FROM persons"
        " WHERE {} AND (last_engagement_at AT TIME ZONE 'UTC')::date > %s"
    ).format(risk_at_least(cutoffs))
    row = conn.execute(query, (engaged_after,)).fetchone()
    return 0 if row is None else int(row[0])


def renew_model_version(conn: psycopg.Connection[Any]) -> None:
    """Mark the return-time counts as changed (call in the transaction that changes them)."""
    conn.execute("UPDATE churn_model_version SET version = gen_random_uuid()")


def model_version(conn: psycopg.Connection[Any]) -> str | None:
    """The version of the return-time counts (``None`` before migration 0016's row)."""
    row = conn.execute("SELECT version FROM churn_model_version").fetchone()
    return None if row is None else str(row[0])
