"""The ingest service's process (``tenure serve ingest``): POST /v1/events, /metrics, /healthz."""

from __future__ import annotations

from datetime import timedelta

import uvicorn

from services.ingest.app import create_app
from tenure.config import Settings
from tenure.entrypoints.bootstrap import database_pool
from tenure.eventlog.publisher import EventPublisher


def run(settings: Settings) -> None:
    """Serve the ingest API on ``TENURE_INGEST_HOST:TENURE_INGEST_PORT`` until interrupted."""
    config = settings.config
    pool = database_pool(settings, min_size=2, max_size=16, check=True)
    publisher = EventPublisher(settings.broker())
    app = create_app(
        pool=pool,
        publisher=publisher,
        max_body_bytes=config.max_body_bytes,
        max_batch_events=config.max_batch_events,
        future_tolerance=timedelta(seconds=config.future_tolerance_s),
    )
    try:
        uvicorn.run(
            app,
            host=config.ingest_host,
            port=config.ingest_port,
            log_level=config.log_level.lower(),
            access_log=False,
            log_config=None,  # records go to the handler the tenure command set up
        )
    finally:
        publisher.close()
        pool.close()
