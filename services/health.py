"""Liveness (``/healthz``), readiness (``/readyz``) and the answer to a database outage.

- ``/healthz`` is answered by the service's own event loop and touches nothing else: it
  says the process is alive and serving, whatever the database or the broker do.
- ``/readyz`` checks the database (``SELECT 1``) and, where the service publishes, the
  broker (a TCP connection to a bootstrap server), each within a short timeout; 503 with
  the reasons while one is away, 200 once both answer.
- A request that needs the database while it is away gets 503 with ``Retry-After``
  (never a hang or a 500); the service recovers by itself when the database is back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool

from tenure.runtime.database import READY_TIMEOUT_S, broker_problem, database_problem
from tenure.storage.connection import DATABASE_UNAVAILABLE

RETRY_AFTER_S = 2
"""What ``Retry-After`` tells a client while the database is away (seconds)."""


async def _within(check: Callable[[], str | None], what: str) -> str | None:
    """Run a blocking check in a thread; a check that does not return in time is a reason."""
    try:
        with anyio.fail_after(READY_TIMEOUT_S + 0.5):
            return await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    except TimeoutError:
        return f"{what} did not answer within {READY_TIMEOUT_S:.0f} s"


def add_health_routes(
    app: FastAPI,
    *,
    pool: ConnectionPool,
    broker: str | None = None,
    on_unavailable: Callable[[], None] = lambda: None,
) -> None:
    """Add ``/healthz`` and ``/readyz`` to ``app`` and answer database outages with 503.

    ``broker``: the bootstrap servers readiness also checks (``None``: the service does
    not use the broker). ``on_unavailable`` is called for each request refused with 503
    (to count it).
    """

    @app.get("/healthz", summary="Liveness: the process serves requests (no dependency)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: the database (and the broker) answer",
        responses={503: {"description": "Not ready; the body says why"}},
    )
    async def readyz() -> Any:
        reasons = [await _within(lambda: database_problem(pool), "database")]
        if broker is not None:
            reasons.append(await _within(lambda: broker_problem(broker), "broker"))
        problems = [r for r in reasons if r is not None]
        if problems:
            return JSONResponse(
                {"status": "not ready", "reasons": problems},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return {"status": "ready"}

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        on_unavailable()
        return JSONResponse(
            {"error": "the database is unavailable; retry"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for kind in DATABASE_UNAVAILABLE:
        app.add_exception_handler(kind, database_unavailable)
