"""The query HTTP service: persons and devices from the lifecycle read models."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool

from services.auth import answer_refusals, require_scope
from services.health import add_health_routes
from services.openapi import operation_id
from services.query.audiences import audiences_router
from services.query.churn import (
    churn_router,
    person_body,
    person_changes_body,
    persons_page_body,
)
from services.query.dashboard import mount_dashboard
from services.query.models import TIER_DOC, Device, Person, PersonChanges, PersonPage
from services.query.params import (
    ERROR_RESPONSES,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    NO_NUL,
    NOT_FOUND,
    answer_invalid_parameters,
)
from services.query.survival import survival_router
from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.storage import person_changes, person_reads


def create_app(*, pool: ConnectionPool) -> FastAPI:
    """Build the query application around a database pool."""
    app = FastAPI(
        title="Tenure query",
        generate_unique_id_function=operation_id,
        version="1",
        description="Lifecycle projections: persons (customers, users, both, neither) and "
        "devices; audiences. Bearer tokens with scope 'read' (`tenure token create --scope "
        "read`); changing audiences needs scope 'audiences:write'.",
    )
    protected = [require_scope(pool, "read")]
    answer_invalid_parameters(app)
    answer_refusals(app)

    def fetch(fn: Any, *args: Any) -> Any:
        with pool.connection() as conn:
            return fn(conn, *args)

    add_health_routes(app, pool=pool)  # no broker: the query service reads Postgres only

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def one(reader: Any, key: str, what: str) -> Any:
        row = await anyio.to_thread.run_sync(fetch, reader, key)
        if row is None:
            return JSONResponse({"error": f"no such {what}"}, status_code=404)
        return row

    @app.get(
        "/v1/persons/{person_id}",
        summary="One person's lifecycle view (id or alias)",
        response_model=Person,
        dependencies=protected,
        responses={**ERROR_RESPONSES, **NOT_FOUND},
    )
    async def get_person(
        person_id: str = Path(max_length=MAX_ID_LENGTH, pattern=NO_NUL),
    ) -> Any:
        return await one(person_body, person_id, "person")

    @app.get(
        "/v1/devices/{device_id}",
        summary="One device's view",
        response_model=Device,
        dependencies=protected,
        responses={**ERROR_RESPONSES, **NOT_FOUND},
    )
    async def get_device(
        device_id: str = Path(max_length=MAX_ID_LENGTH, pattern=NO_NUL),
    ) -> Any:
        return await one(person_reads.device, device_id, "device")

    @app.get(
        "/v1/persons",
        summary="Persons by segment, stage, level, tier, super user, churn risk; or the "
        "persons changed since a cursor (updated_since)",
        response_model=PersonChanges | PersonPage,
        dependencies=protected,
        responses=ERROR_RESPONSES,
    )
    async def list_persons(
        segment: Segment | None = None,
        stage: Stage | None = None,
        level: Level | None = None,
        tier: str | None = Query(
            None, max_length=MAX_TEXT_LENGTH, pattern=NO_NUL, description=TIER_DOC
        ),
        super_user: bool | None = None,
        min_churn_risk: float | None = Query(
            None,
            ge=0.0,
            le=1.0,
            description="Only persons whose churn risk (P(no engagement in the next W days) "
            "at the aggregates' as-of) is at least this; 0.5 is the documented "
            "'care before churn' threshold.",
        ),
        after: str | None = Query(
            None,
            max_length=MAX_ID_LENGTH,
            pattern=NO_NUL,
            description="Cursor: the last person_id of a page.",
        ),
        limit: int = Query(100, ge=1, le=1000),
        updated_since: str | None = Query(
            None,
            max_length=MAX_ID_LENGTH * 2,
            pattern=NO_NUL,
            description="Follow changes: '0' for all, then the 'next' of the previous answer. "
            "Answers the persons changed after it in change order and the tokens of the "
            "persons removed; no filters or 'after' with it (docs/projection.md).",
        ),
    ) -> Any:
        if updated_since is not None:
            return await changes(updated_since, limit, segment, stage, level, tier,
                                 super_user, min_churn_risk, after)  # fmt: skip
        filters = person_reads.PersonFilter(
            None if segment is None else segment.value,
            None if stage is None else stage.value,
            None if level is None else level.value,
            tier,
            super_user,
        )
        rows = await anyio.to_thread.run_sync(
            fetch, persons_page_body, filters, min_churn_risk, after, limit
        )
        next_cursor = rows[-1]["person_id"] if len(rows) == limit else None
        return {"persons": rows, "next": next_cursor}

    async def changes(since: str, limit: int, *others: Any) -> Any:
        if any(other is not None for other in others):
            return JSONResponse(
                {"error": "updated_since: not with filters or 'after'"}, status_code=422
            )
        try:
            cursor = person_changes.ChangeCursor.decode(since)
        except person_changes.InvalidCursor as exc:
            return JSONResponse({"error": f"updated_since: {exc}"}, status_code=422)
        return await anyio.to_thread.run_sync(fetch, person_changes_body, cursor, limit)

    app.include_router(survival_router(pool))
    app.include_router(churn_router(pool))
    app.include_router(audiences_router(pool))
    mount_dashboard(app, pool)
    return app
