"""Liveness and readiness of the HTTP services against real Postgres (and no broker)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from psycopg_pool import ConnectionPool

from services.ingest.app import create_app as create_ingest_app
from services.query.app import create_app as create_query_app
from tenure.eventlog.publisher import EventPublisher
from tenure.runtime.process import free_port
from tests.integration.conftest import ServerThread


def test_readyz_names_an_unreachable_broker_while_healthz_stays_ok(pool: ConnectionPool) -> None:
    publisher = EventPublisher(f"127.0.0.1:{free_port()}", timeout_s=2)  # nothing listens
    ingest = create_ingest_app(
        pool=pool,
        publisher=publisher,
        max_body_bytes=1 << 20,
        max_batch_events=10,
        future_tolerance=timedelta(minutes=5),
    )
    try:
        with ServerThread(ingest) as server:
            assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
            reply = httpx.get(f"{server.url}/readyz", timeout=10)
            assert reply.status_code == 503 and reply.headers["Retry-After"]
            (reason,) = reply.json()["reasons"]
            assert reason.startswith("broker unavailable")
    finally:
        publisher.close()
    with ServerThread(create_query_app(pool=pool)) as server:  # reads Postgres only
        assert httpx.get(f"{server.url}/readyz", timeout=10).json() == {"status": "ready"}
        assert "/readyz" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
