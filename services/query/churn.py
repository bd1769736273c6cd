"""Churn API routes: a person's churn probability at read time, and the live backtest.

The stored person view keeps the inputs of the probability (the last engagement day and the
return-time bucket, ``churn_inputs.bucket``); the model is the live return-time counts
(``tenure.analytics.live.churn_model``) with the open gaps aged at ``as_of``. Both are pure
functions of the log and ``as_of``, so the probability is too (docs/lifecycle.md, "Churn
probability"). The calibration route backtests the model on the platform's own history:
everyone scored at ``as_of - W`` by a model learned from the days up to then.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
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
from tenure.analytics.live import churn_model, reader
from tenure.analytics.return_times import MAX_AGE_DAYS, ROOT, ReturnBucket
from tenure.storage import person_reads
from tenure.storage.connection import read_only_snapshot

__all__ = ["calibration_body", "churn_router", "person_churn_body"]

CARE_THRESHOLD = 0.5
"""The documented "care before churn" threshold (docs/lifecycle.md: chosen from the
evaluation: at 0.5 about 79 % of flagged people do go silent and 71 % of leavers are caught)."""


def _bucket_of(inputs: Any) -> str | None:
    if isinstance(inputs, str):
        inputs = orjson.loads(inputs)
    bucket = inputs.get("bucket") if isinstance(inputs, dict) else None
    return bucket if isinstance(bucket, str) else None


def person_churn_body(
    conn: Any, state: reader.AggregateState, person_id: str, as_of: str | None
) -> dict[str, Any] | None:
    """The ``/v1/churn/persons/{id}`` answer (``None``: no such person)."""
    row = person_reads.person(conn, person_id)
    if row is None:
        return None
    at = resolve_as_of(as_of, state) or row["as_of"]
    window = state.churn_window_days
    last = row["last_engagement_at"]
    bucket = _bucket_of(row["churn_inputs"])
    body: dict[str, Any] = {
        "person_id": row["person_id"],
        "as_of": at.astimezone(UTC).isoformat(),
        "window_days": window,
        "stage": row["stage"],
        "probability": None,
        "silence_days": None,
        "bucket": bucket,
        "curve": None,
        "gaps_at_risk": None,
        "care": False,
    }
    if last is None or bucket is None:
        return body  # no engagement: no relationship to lose yet
    silence = max(0, (at.astimezone(UTC).date() - last.astimezone(UTC).date()).days)
    model = churn_model.read_model(conn, at.astimezone(UTC).date())
    body["silence_days"] = silence
    if ROOT not in model.hazards:
        return body  # the model has not learned anything yet
    parsed = ReturnBucket.parse(bucket)
    _, curve = model.hazard(parsed)
    probability = model.silent_probability(parsed, silence, window)
    body.update(
        probability=round(probability, 4),
        curve=curve,
        gaps_at_risk=int(model.at_risk[curve][min(silence + 1, MAX_AGE_DAYS)]),
        care=probability >= CARE_THRESHOLD and silence < window,
    )
    return body


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
