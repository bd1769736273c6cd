"""Churn risk at read time: the churn API routes, and the persons routes' ``churn_risk``.

The stored person view keeps the inputs of the probability (the last engagement day and the
return-time bucket, ``churn_inputs.bucket``); the model is the live return-time counts
(``tenure.storage.churn_model``) with the open gaps aged at ``as_of``. Both are pure
functions of the log and ``as_of``, so the probability is too (docs/lifecycle.md, "Churn
risk"). ``/v1/churn/persons/{id}`` (:func:`person_churn_body`), ``/v1/persons/{id}``
(:func:`person_body`) and ``/v1/persons`` (:func:`persons_page_body`, with the
``min_churn_risk`` filter) all read it through :func:`estimate_of`. The calibration route
backtests the model on the platform's own history: everyone scored at ``as_of - W`` by a
model learned from the days up to then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from psycopg_pool import ConnectionPool

from services.auth import require_scope
from services.query.churn_metrics import attach_churn_gauges
from services.query.params import (
    ERROR_RESPONSES,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    NO_NUL,
    NOT_FOUND,
)
from services.query.survival import AS_OF_DOC, AsOfError, resolve_as_of
from tenure.analytics.churn_backtest import backtest
from tenure.analytics.churn_risk import ChurnEstimate, ChurnRiskTable
from tenure.privacy.boundary import pseudonymiser_for
from tenure.storage import churn_model, person_changes, person_reads
from tenure.storage import survival_reads as reader
from tenure.storage.churn_risk import latest_person_as_of
from tenure.storage.connection import read_only_snapshot

__all__ = [
    "calibration_body",
    "churn_router",
    "estimate_of",
    "person_body",
    "person_churn_body",
    "persons_page_body",
    "risk_table",
    "with_churn_risk",
]


def _bucket_of(inputs: Any) -> str | None:
    if isinstance(inputs, str):
        inputs = orjson.loads(inputs)
    bucket = inputs.get("bucket") if isinstance(inputs, dict) else None
    return bucket if isinstance(bucket, str) else None


def _utc_day(at: datetime | None) -> date | None:
    return None if at is None else at.astimezone(UTC).date()


def risk_table(conn: Any, at: datetime, window_days: int) -> ChurnRiskTable:
    """The churn risk of everyone at ``at`` (read once per request)."""
    day = at.astimezone(UTC).date()
    return churn_model.read_risk_table(conn, day, window_days)


def estimate_of(table: ChurnRiskTable, row: Mapping[str, Any]) -> ChurnEstimate:
    """A ``persons`` row's churn risk: its stored inputs read against ``table``."""
    return table.estimate(_bucket_of(row["churn_inputs"]), _utc_day(row["last_engagement_at"]))


def with_churn_risk(row: dict[str, Any], table: ChurnRiskTable) -> dict[str, Any]:
    """The row as the persons routes answer it: ``churn_risk`` = the probability at the
    table's as-of, ``churn_inputs`` = what it was computed from (docs/lifecycle.md)."""
    estimate = estimate_of(table, row)
    row["churn_risk"] = estimate.probability
    row["churn_inputs"] = {
        "as_of": table.as_of.isoformat(),
        "window_days": table.window_days,
        "silence_days": estimate.silence_days,
        "bucket": estimate.bucket,
        "curve": estimate.curve,
        "gaps_at_risk": estimate.gaps_at_risk,
    }
    return row


def person_body(conn: Any, person_id: str) -> dict[str, Any] | None:
    """``/v1/persons/{id}``: the row with its churn risk at the aggregates' as-of (the
    default of ``/v1/churn/persons/{id}``, the row's own before the aggregates' first pass)."""
    with read_only_snapshot(conn):
        row = person_reads.person(conn, person_id)
        if row is None:
            return None
        state = reader.aggregate_state(conn)
        at = state.as_of or row["as_of"]
        return with_churn_risk(row, risk_table(conn, at, state.churn_window_days))


def persons_page_body(
    conn: Any,
    filters: person_reads.PersonFilter,
    min_churn_risk: float | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """``/v1/persons``: a page of rows with their churn risk, all at the aggregates' as-of
    (before their first pass: the latest row's); ``min_churn_risk`` keeps the rows whose
    risk is at least that, as per-bucket cutoffs of the last engagement day (one
    comparison per row in SQL, the model read once)."""
    with read_only_snapshot(conn):
        state = reader.aggregate_state(conn)
        at = state.as_of or latest_person_as_of(conn)
        table = None if at is None else risk_table(conn, at, state.churn_window_days)
        if min_churn_risk is not None:
            cutoffs = {} if table is None else table.last_day_cutoffs(min_churn_risk)
            filters = replace(filters, churn_cutoffs=cutoffs)
        rows = person_reads.persons_page(conn, filters, after, limit)
        if table is None:  # no person at all
            return rows
        return [with_churn_risk(row, table) for row in rows]


def person_changes_body(
    conn: Any, cursor: person_changes.ChangeCursor, limit: int
) -> dict[str, Any]:
    """``/v1/persons?updated_since=``: the changed persons after ``cursor`` in change order,
    each with its churn risk (as the list shows it) and its token, the removed persons'
    tokens, and the cursor to follow with (``docs/projection.md``, "Following persons")."""
    with read_only_snapshot(conn):
        page = person_reads.persons_changed(conn, cursor, limit)
        state = reader.aggregate_state(conn)
        at = state.as_of or latest_person_as_of(conn)
        table = None if at is None else risk_table(conn, at, state.churn_window_days)
        token = pseudonymiser_for(conn).token
    rows = page.persons if table is None else [with_churn_risk(r, table) for r in page.persons]
    return {
        "persons": [{**row, "person_token": token(str(row["person_id"]))} for row in rows],
        "removed": [token(person_id) for person_id in page.removed],
        "next": page.next.encode(),
    }


def person_churn_body(
    conn: Any, state: reader.AggregateState, person_id: str, as_of: str | None
) -> dict[str, Any] | None:
    """The ``/v1/churn/persons/{id}`` answer (``None``: no such person)."""
    row = person_reads.person(conn, person_id)
    if row is None:
        return None
    at = resolve_as_of(as_of, state) or row["as_of"]
    estimate = estimate_of(risk_table(conn, at, state.churn_window_days), row)
    return {
        "person_id": row["person_id"],
        "as_of": at.astimezone(UTC).isoformat(),
        "window_days": state.churn_window_days,
        "stage": row["stage"],
        "probability": estimate.probability,
        "silence_days": estimate.silence_days,
        "bucket": _bucket_of(row["churn_inputs"]),
        "curve": estimate.curve,
        "gaps_at_risk": estimate.gaps_at_risk,
        "care": estimate.care,
    }


def calibration_body(conn: Any, state: reader.AggregateState, as_of: str | None) -> dict[str, Any]:
    """The ``/v1/churn/calibration`` answer: the backtest at ``as_of - W``."""
    at = resolve_as_of(as_of, state)
    window = state.churn_window_days
    if at is None:
        return {"as_of": None, "window_days": window, "people": 0, "deciles": []}
    result = backtest(churn_model.read_histories(conn), at.astimezone(UTC).date(), window)
    return {
        "as_of": at.astimezone(UTC).isoformat(),
        "cut": result.cut.isoformat(),
        "window_days": window,
        "people": result.people,
        "silent_next": result.silent_next,
        "auc": None if result.auc is None else round(result.auc, 4),
        "brier": None if result.brier is None else round(result.brier, 4),
        "deciles": [
            {
                "count": row.count,
                "mean_prediction": round(row.mean_prediction, 4),
                "observed_rate": round(row.observed_rate, 4),
            }
            for row in result.deciles
        ],
    }


def churn_router(pool: ConnectionPool) -> APIRouter:
    """The ``/v1/churn/*`` routes over a database pool (read-scope bearer auth)."""
    router = APIRouter(
        prefix="/v1/churn", tags=["churn"], dependencies=[require_scope(pool, "read")]
    )
    attach_churn_gauges(pool)

    def run(work: Callable[[Any, reader.AggregateState], Any]) -> Any:
        with pool.connection() as conn, read_only_snapshot(conn):
            return work(conn, reader.aggregate_state(conn))

    async def answer(work: Callable[[Any, reader.AggregateState], Any]) -> Any:
        try:
            body = await anyio.to_thread.run_sync(run, work)
        except AsOfError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        if body is None:
            return JSONResponse({"error": "no such person"}, status_code=404)
        return Response(orjson.dumps(body), media_type="application/json")

    @router.get(
        "/persons/{person_id}",
        summary="A person's churn probability: P(no engagement in the next W days)",
        description="Computed at read time from the person's silence and return-time bucket "
        "(stored in their view) and the live return-time model (Kaplan-Meier over the gaps "
        "between engagement days, per bucket, shrunk toward the parent bucket). `curve` is "
        "the bucket the estimate came from, `gaps_at_risk` how many gaps it rests on; "
        "`probability` is null before the model has learned anything.",
        responses={**ERROR_RESPONSES, **NOT_FOUND},
    )
    async def person_churn(
        person_id: str = Path(max_length=MAX_ID_LENGTH, pattern=NO_NUL),
        as_of: str | None = Query(
            None, max_length=MAX_TEXT_LENGTH, pattern=NO_NUL, description=AS_OF_DOC
        ),
    ) -> Any:
        return await answer(lambda conn, state: person_churn_body(conn, state, person_id, as_of))

    @router.get(
        "/calibration",
        summary="Backtest of the churn probability: predicted vs observed by decile",
        description="Everyone engaged and not churned at `as_of - W` is scored by a model "
        "learned from the days up to then; the outcome is no engagement in the W days "
        "after. AUC, Brier score and the reliability table by decile of prediction.",
        responses=ERROR_RESPONSES,
    )
    async def calibration(
        as_of: str | None = Query(
            None, max_length=MAX_TEXT_LENGTH, pattern=NO_NUL, description=AS_OF_DOC
        ),
    ) -> Any:
        return await answer(lambda conn, state: calibration_body(conn, state, as_of))

    return router
