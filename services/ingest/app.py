"""The ingest HTTP service: ``POST /v1/events`` (every CloudEvents HTTP mode, or NDJSON), health.

The body is decoded by :func:`tenure.contract.decode_http`: structured, batched and binary
CloudEvents, Tenure's JSON array and NDJSON; one result per event whatever the mode.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import cache
from typing import Any, Literal

import anyio.to_thread
import orjson
from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from schemas import bundled_event_schema
from services.auth import AuthFailure, TokenAuthenticator
from services.health import add_health_routes
from services.ingest import metrics
from services.ingest.batch import BatchResult, ingest_batch
from services.openapi import BEARER, operation_id
from tenure.contract import MalformedBody, decode_http
from tenure.contract.codec import (
    CLOUDEVENTS_BATCH_JSON,
    CLOUDEVENTS_JSON,
    SUPPORTED_CONTENT_TYPES,
    is_binary_http,
)
from tenure.eventlog.publisher import EventPublisher, PublishFailed

log = logging.getLogger(__name__)


class EventResultModel(BaseModel):
    """Outcome of one event of the batch."""

    index: int = Field(description="Position of the event in the request body (0-based).")
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = None
    source: str | None = None
    field: str | None = Field(None, description="The offending field, for a rejected event.")
    reason: str | None = Field(None, description="Why the event was rejected.")


class IngestResponse(BaseModel):
    """Per-event results and their counts."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResultModel]


class ErrorResponse(BaseModel):
    """A request-level error (auth, size, media type, body, broker)."""

    error: str


@cache
def event_schema() -> dict[str, Any]:
    """The JSON Schema of one event in the OpenAPI document: the contract, bundled.

    Made from ``schemas/events/v1/*.json`` (see :func:`schemas.bundled_event_schema`); the
    validator applies the same files, plus the bounds checked in code, and answers per event.
    """
    return bundled_event_schema()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    metrics.REQUESTS.labels(str(status)).inc()
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def answer(result: BatchResult, sent: int) -> Response:
    """The per-event answer, an :class:`IngestResponse` without ``null`` fields, written by
    orjson: building 500 pydantic models per request was ~6% of the service's CPU."""
    rejected = result.count("rejected")
    body = {
        "accepted": result.count("accepted"),
        "duplicates": result.count("duplicate"),
        "rejected": rejected,
        "results": [
            {
                name: value
                for name, value in (
                    ("index", r.index),
                    ("status", r.status),
                    ("id", r.id),
                    ("source", r.source),
                    ("field", r.field),
                    ("reason", r.reason),
                )
                if value is not None
            }
            for r in result.results
        ],
    }
    status = 422 if rejected == sent else 200
    metrics.REQUESTS.labels(str(status)).inc()
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(
    *,
    pool: ConnectionPool,
    publisher: EventPublisher,
    max_body_bytes: int,
    max_batch_events: int,
    future_tolerance: timedelta,
) -> FastAPI:
    """Build the ingest application around a database pool and an event publisher."""
    app = FastAPI(
        title="Tenure ingest",
        generate_unique_id_function=operation_id,
        version="1",
        description="Send CloudEvents 1.0 to Tenure in any HTTP content mode: structured "
        "(`application/cloudevents+json`, one event), batched "
        "(`application/cloudevents-batch+json`), binary (`ce-*` headers, the body is `data`), "
        "or a JSON array / NDJSON of structured events. See docs/ingest.md.",
    )
    auth = TokenAuthenticator(pool, scope="ingest")

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    add_health_routes(
        app,
        pool=pool,
        broker=publisher.bootstrap,
        on_unavailable=lambda: metrics.REQUESTS.labels("503").inc(),
    )

    @app.post(
        "/v1/events",
        summary="Send a batch of events",
        response_model=IngestResponse,
        dependencies=[Security(BEARER)],
        responses={
            400: {"model": ErrorResponse, "description": "Body is not JSON / NDJSON"},
            401: {"model": ErrorResponse, "description": "Missing or unknown token"},
            403: {"model": ErrorResponse, "description": "Revoked token"},
            413: {"model": ErrorResponse, "description": "Body or batch too large"},
            415: {"model": ErrorResponse, "description": "Unsupported Content-Type"},
            422: {"model": IngestResponse, "description": "Every event was rejected"},
            503: {"model": ErrorResponse, "description": "Broker or database unavailable; retry"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": event_schema()}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    CLOUDEVENTS_JSON: {"schema": event_schema()},
                    CLOUDEVENTS_BATCH_JSON: {"schema": {"type": "array", "items": event_schema()}},
                },
            }
        },
    )
    async def post_events(request: Request) -> Any:
        checked = await anyio.to_thread.run_sync(auth.check, request.headers.get("authorization"))
        if isinstance(checked, AuthFailure):
            return _error(checked.status, checked.message)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in SUPPORTED_CONTENT_TYPES and not is_binary_http(request.headers):
            return _error(415, f"Content-Type must be one of {', '.join(SUPPORTED_CONTENT_TYPES)}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, f"body is larger than {max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return _error(413, f"body is larger than {max_body_bytes} bytes")
        try:
            items = decode_http(bytes(body), request.headers)
        except MalformedBody as exc:
            return _error(400, str(exc))
        if not items:
            return _error(400, "the batch holds no event")
        if len(items) > max_batch_events:
            return _error(413, f"batch holds {len(items)} events; at most {max_batch_events}")
        try:
            result = await anyio.to_thread.run_sync(
                lambda: ingest_batch(
                    items,
                    producer=checked.producer,
                    pool=pool,
                    publisher=publisher,
                    future_tolerance=future_tolerance,
                )
            )
        except PublishFailed as exc:
            metrics.PUBLISH_FAILURES.inc()
            log.warning("batch refused: %s", exc)
            return _error(503, "the event log is unavailable; retry", {"Retry-After": "1"})
        metrics.BATCH_SIZE.observe(len(items))
        return answer(result, len(items))

    return app
