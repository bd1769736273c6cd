"""Survival API routes: tenure curves, cohort retention, activation, conversion, repeat.

Every route reads the live aggregates (``tenure.storage.survival_reads``), never the persons table,
as of ``as_of`` (default: the instant the aggregates were brought up to, the projection
watermark). An ``as_of`` earlier than that is refused with 422: the aggregates cannot
forget facts (use ``tenure replay --as-of`` for the past).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from psycopg_pool import ConnectionPool

from services.auth import require_scope
from services.query.models import MilestoneAnswer, RetentionAnswer, SurvivalAnswer
from services.query.params import (
    ERROR_RESPONSES,
    MAX_GROUPS,
    MAX_GROUPS_LENGTH,
    MAX_TEXT_LENGTH,
    NO_NUL,
    ErrorBody,
    check_group_count,
)
from services.query.survival_metrics import attach_survival_gauges
from tenure.analytics.lifetable import LifeTable
from tenure.analytics.survival_contribution import ACTIVATION, CONVERSION, REPEAT
from tenure.analytics.survival_report import (
    SelectorError,
    logrank_report,
    milestone_report,
    parse_groups,
    retention_report,
    survival_report,
)
from tenure.domain.view import DEFAULT_CONFIG
from tenure.errors import TenureError
from tenure.storage import survival_reads as reader
from tenure.storage.connection import read_only_snapshot

__all__ = [
    "AsOfError",
    "milestone_body",
    "resolve_as_of",
    "retention_body",
    "survival_body",
    "survival_router",
]

CONFIDENCE = 0.95
MAX_AS_OF_AHEAD_DAYS = 3650
"""How far past the projection watermark ``as_of`` may be (the answers grow with it)."""
EARLIEST_AS_OF = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest ``as_of`` accepted (events are not older either)."""
GROUPS_DOC = (
    "Comma-separated group selectors: `all`, `entry:connected_buyer|one_time_buyer|"
    "non_paying_user`, `segment:<segment>`, `stage:<stage>`, `level:<level>`, `tier:<tier>`, "
    "`product:<product>`, `cohort:<YYYY-MM-DD, Monday of the first-engagement week>`. "
    f"At most {MAX_GROUPS} selectors per request."
)
AS_OF_DOC = (
    "ISO-8601 instant with a time zone (default: the projection watermark the aggregates "
    "were last brought up to). Earlier than that: 422. Later: people not yet churned are "
    "re-judged and milestone censoring extended to that day, with no new facts; at most "
    f"{MAX_AS_OF_AHEAD_DAYS} days later (422 beyond)."
)
MILESTONE_WINDOWS: dict[str, int] = {
    ACTIVATION: DEFAULT_CONFIG.activation_window_days,
    CONVERSION: 90,
    REPEAT: 90,
}
"""Default ``window_days`` of each milestone's ``rate``."""


def _example(body: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "Per-group results",
            "content": {"application/json": {"example": body}},
        },
        **ERROR_RESPONSES,
        422: {
            "model": ErrorBody,
            "description": "Unknown group selector, too many groups, unusable as_of or a "
            "parameter out of its bounds",
        },
    }


SURVIVAL_EXAMPLE = {
    "as_of": "2026-11-01T00:00:00+00:00", "window_days": 30, "confidence": 0.95,
    "ci_transform": "log-log",
    "groups": [{
        "group": "entry:connected_buyer", "n": 120, "events": 40, "censored": 80,
        "median_days": 41.0, "median_ci": [33.0, 55.0], "rmst_days": 50.2,
        "rmst_horizon_days": 180,
        "curve": [{"day": 0, "survival": 1.0, "ci_low": 1.0, "ci_high": 1.0, "at_risk": 120}],
    }],
    "logrank": {"groups": ["entry:connected_buyer", "entry:one_time_buyer"],
                "statistic": 3.1, "p_value": 0.07},
}  # fmt: skip
RETENTION_EXAMPLE = {
    "as_of": "2026-11-01T00:00:00+00:00",
    "groups": [{"group": "all", "cohorts": [{
        "cohort": "2026-03-02", "size": 50, "on": [1.0, 0.6], "on_or_after": [1.0, 0.7],
        "on_count": [50, 30], "on_or_after_count": [50, 35]}]}],
}  # fmt: skip
MILESTONE_EXAMPLE = {
    "as_of": "2026-11-01T00:00:00+00:00", "window_days": 14, "confidence": 0.95,
    "groups": [{"group": "all", "n": 100, "count": 70, "rate": 0.72, "eligible": 90,
                "curve": [{"day": 0, "share": 0.0, "ci_low": 0.0, "ci_high": 0.0,
                           "at_risk": 100}]}],
}  # fmt: skip


class AsOfError(TenureError, ValueError):
    """An as-of instant the aggregates cannot answer for."""


def resolve_as_of(text: str | None, state: reader.AggregateState) -> datetime | None:
    """The instant to read at: ``text`` if given (not before the aggregates), else theirs."""
    if text is None:
        return state.as_of
    if "\x00" in text:  # fromisoformat stops reading at a NUL
        raise AsOfError("as_of must not contain the NUL character (U+0000)")
    try:
        as_of = datetime.fromisoformat(text)
    except ValueError:
        raise AsOfError(f"as_of {text!r} is not an ISO-8601 instant") from None
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise AsOfError("as_of needs a time zone (e.g. 2026-05-01T00:00:00Z)")
    try:
        as_of = as_of.astimezone(UTC)
    except OverflowError:
        raise AsOfError(f"as_of {text!r} is out of range") from None
    if as_of < EARLIEST_AS_OF:
        raise AsOfError(f"as_of {text!r} is before {EARLIEST_AS_OF.isoformat()}")
    if state.as_of is not None and as_of > state.as_of + timedelta(days=MAX_AS_OF_AHEAD_DAYS):
        raise AsOfError(
            f"as_of {as_of.isoformat()} is more than {MAX_AS_OF_AHEAD_DAYS} days after the "
            f"projection watermark {state.as_of.isoformat()}"
        )
    if state.as_of is not None and as_of < state.as_of:
        raise AsOfError(
            f"as_of {as_of.isoformat()} is before the projection watermark "
            f"{state.as_of.isoformat()}; the live aggregates only move forward "
            "(rebuild the past with `tenure replay --as-of`)"
        )
    return as_of


def _day(as_of: datetime | None) -> date | None:
    return None if as_of is None else as_of.astimezone(UTC).date()


def _iso(as_of: datetime | None) -> str | None:
    return None if as_of is None else as_of.astimezone(UTC).isoformat()


def _selected(groups: str | None, default: tuple[str, ...] = ("all",)) -> list[str]:
    """The group selectors of a request (at most :data:`MAX_GROUPS`), or ``default``."""
    too_many = check_group_count(groups)
    if too_many is not None:
        raise SelectorError(too_many)
    return parse_groups(groups, default)


def survival_body(
    conn: Any, state: reader.AggregateState, groups: str | None, as_of: str | None, horizon: int
) -> dict[str, Any]:
    """The ``/survival`` answer (the route runs it in one read-only snapshot)."""
    selected = _selected(groups)
    at = resolve_as_of(as_of, state)
    day = _day(at)
    tables = [
        reader.tenure_table(conn, g, day, state) if day is not None else LifeTable()
        for g in selected
    ]
    return {
        "as_of": _iso(at),
        "window_days": state.churn_window_days,
        "confidence": CONFIDENCE,
        "ci_transform": "log-log",
        "groups": [
            survival_report(g, t, horizon, 1 - CONFIDENCE)
            for g, t in zip(selected, tables, strict=True)
        ],
        "logrank": logrank_report(selected, tables),
    }


def retention_body(
    conn: Any, state: reader.AggregateState, groups: str | None, as_of: str | None
) -> dict[str, Any]:
    """The ``/retention`` answer."""
    selected = _selected(groups)
    at = resolve_as_of(as_of, state)
    day = _day(at)
    return {
        "as_of": _iso(at),
        "groups": [
            retention_report(g, reader.cohort_rows(conn, g, day) if day else []) for g in selected
        ],
    }


def milestone_body(
    conn: Any,
    state: reader.AggregateState,
    kind: str,
    groups: str | None,
    as_of: str | None,
    window_days: int,
    default: tuple[str, ...] = ("all",),
) -> dict[str, Any]:
    """The ``/activation``, ``/conversion`` or ``/repeat`` answer."""
    selected = _selected(groups, default)
    at = resolve_as_of(as_of, state)
    day = _day(at)
    return {
        "as_of": _iso(at),
        "window_days": window_days,
        "confidence": CONFIDENCE,
        "groups": [
            milestone_report(
                g,
                reader.milestone_table(conn, kind, g, day) if day else LifeTable(),
                window_days,
                1 - CONFIDENCE,
            )
            for g in selected
        ],
    }


def survival_router(pool: ConnectionPool) -> APIRouter:
    """The ``/v1/tenure/*`` routes over a database pool (read-scope bearer auth)."""
    router = APIRouter(
        prefix="/v1/tenure", tags=["survival"], dependencies=[require_scope(pool, "read")]
    )
    attach_survival_gauges(pool)

    def run(work: Callable[[Any, reader.AggregateState], dict[str, Any]]) -> dict[str, Any]:
        with pool.connection() as conn, read_only_snapshot(conn):
            return work(conn, reader.aggregate_state(conn))

    async def answer(work: Callable[[Any, reader.AggregateState], dict[str, Any]]) -> Any:
        try:
            body = await anyio.to_thread.run_sync(run, work)
        except (SelectorError, AsOfError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return Response(orjson.dumps(body), media_type="application/json")

    @router.get(
        "/survival",
        summary="Kaplan-Meier tenure curves per group, with median, RMST and log-rank",
        description="Active tenure (first to last engagement, UTC days) per group; churned "
        "(event) after W days of silence as of `as_of`, otherwise censored at the same "
        "duration. Greenwood variance, 95% log-log band, median (first day with S <= 0.5) "
        "and its CI, restricted mean up to `horizon_days`, numbers at risk per day; the "
        "log-rank test when exactly two groups are asked. See docs/metrics.md.",
        response_model=SurvivalAnswer,
        responses=_example(SURVIVAL_EXAMPLE),
    )
    async def survival(
        groups: str | None = Query(
            None, max_length=MAX_GROUPS_LENGTH, pattern=NO_NUL, description=GROUPS_DOC
        ),
        as_of: str | None = Query(
            None, max_length=MAX_TEXT_LENGTH, pattern=NO_NUL, description=AS_OF_DOC
        ),
        horizon_days: int = Query(180, ge=1, le=3650, description="RMST horizon in days."),
    ) -> Any:
        return await answer(
            lambda conn, state: survival_body(conn, state, groups, as_of, horizon_days)
        )

    @router.get(
        "/retention",
        summary="Weekly cohort retention per group ('on' week N and 'on or after' week N)",
        description="Cohort = Monday (UTC) of the first-engagement week. `on[k]`: share of "
        "the cohort engaged in week k; `on_or_after[k]`: engaged in week k or any later "
        "week. Rows cover the weeks started by `as_of`.",
        response_model=RetentionAnswer,
        responses=_example(RETENTION_EXAMPLE),
    )
    async def retention(
        groups: str | None = Query(
            None, max_length=MAX_GROUPS_LENGTH, pattern=NO_NUL, description=GROUPS_DOC
        ),
        as_of: str | None = Query(
            None, max_length=MAX_TEXT_LENGTH, pattern=NO_NUL, description=AS_OF_DOC
        ),
    ) -> Any:
        return await answer(lambda conn, state: retention_body(conn, state, groups, as_of))

    def milestone_route(
        kind: str, summary: str, description: str, default: tuple[str, ...]
    ) -> None:
        async def endpoint(
            groups: str | None = Query(
                None, max_length=MAX_GROUPS_LENGTH, pattern=NO_NUL, description=GROUPS_DOC
            ),
            as_of: str | None = Query(
                None, max_length=MAX_TEXT_LENGTH, pattern=NO_NUL, description=AS_OF_DOC
            ),
            window_days: int = Query(
                MILESTONE_WINDOWS[kind], ge=0, le=3650, description="Window of `rate`, days."
            ),
        ) -> Any:
            return await answer(
                lambda conn, state: milestone_body(
                    conn, state, kind, groups, as_of, window_days, default
                ),
            )

        router.add_api_route(
            f"/{kind}",
            endpoint,
            methods=["GET"],
            name=kind,
            summary=summary,
            description=description,
            response_model=MilestoneAnswer,
            responses=_example(MILESTONE_EXAMPLE),
        )

    milestone_route(
        ACTIVATION,
        "Buyers -> users: time to activation and share activated within A days",
        "Buyers by entry (paid before or without using a device). Day 0 = first paid order; "
        "event = first activation of a device they use or first use of one they paid for. "
        "`share`: Kaplan-Meier cumulative share activated by that day (censoring-aware); "
        "`rate`: activated within `window_days` (default A = 14) among buyers watched that "
        "long; `count`: activated by `as_of`.",
        ("all",),
    )
    milestone_route(
        CONVERSION,
        "Users -> customers: time to first payment of non-paying users",
        "Non-paying users by entry (used a device before paying). Day 0 = first device use; "
        "event = first paid order. `rate`: paid within `window_days` (default 90) among "
        "users watched that long; `count`: paid by `as_of`.",
        ("all",),
    )
    milestone_route(
        REPEAT,
        "Customers -> repeat customers: time to the second paid order",
        "Day 0 = first paid order; event = second paid order. `rate`: second order within "
        "`window_days` (default 90) among customers watched that long; `count`: customers "
        "with a second paid order by `as_of`. Default groups: connected vs one-time buyers.",
        ("entry:connected_buyer", "entry:one_time_buyer"),
    )
    return router
