"""The built-in dashboard: a page with charts over the query API, no Grafana needed.

``GET /dashboard`` serves the page and ``/dashboard/static/`` its assets (Apache ECharts,
vendored). The page holds no data: it reads a read-scope token from its URL fragment
(``/dashboard#token=...``, printed by ``tenure up``) and polls the JSON API with it:
``GET /v1/dashboard/summary`` (below) for counts, funnels and pipeline health, and the
analytics API (``/v1/tenure/survival``, ``/retention``, ``/activation``, ``/conversion``) for
curves when the service has it (the summary says which).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from services.auth import require_scope
from services.query import business_metrics
from services.query.dashboard_summary import read_summary
from services.query.models import DashboardSummary
from services.query.params import ErrorBody

STATIC = Path(__file__).with_name("dashboard_static")
ANALYTICS_ROUTES = {
    "survival": "/v1/tenure/survival",
    "retention": "/v1/tenure/retention",
    "activation": "/v1/tenure/activation",
    "conversion": "/v1/tenure/conversion",
    "repeat": "/v1/tenure/repeat",
}


def analytics_available(app: FastAPI) -> dict[str, bool]:
    """Which analytics routes this service serves (the page fetches only those).

    Read from the OpenAPI document: included routers are not plain routes in ``app.routes``.
    """
    paths = set(app.openapi().get("paths", {}))
    return {name: path in paths for name, path in ANALYTICS_ROUTES.items()}


def dashboard_router(pool: ConnectionPool) -> APIRouter:
    """The page, its summary endpoint; also points the business gauges at ``pool``."""
    business_metrics.install(pool)
    router = APIRouter()
    read_token = require_scope(pool, "read")

    @router.get("/dashboard", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @router.get(
        "/v1/dashboard/summary",
        summary="Counts, funnels and pipeline health for the built-in dashboard",
        response_model=DashboardSummary,
        dependencies=[read_token],
        responses={
            401: {"model": ErrorBody, "description": "Missing or unknown token"},
            403: {"model": ErrorBody, "description": "Revoked token"},
        },
    )
    async def summary(request: Request) -> Any:
        def read() -> dict[str, Any]:
            with pool.connection() as conn:
                return read_summary(conn)

        body = await anyio.to_thread.run_sync(read)
        body["analytics"] = analytics_available(request.app)
        return body

    return router


def mount_dashboard(app: FastAPI, pool: ConnectionPool) -> None:
    """Add the dashboard page, its static assets and its summary endpoint to ``app``."""
    app.include_router(dashboard_router(pool))
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
