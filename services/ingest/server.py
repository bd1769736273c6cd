"""Running the ingest service as a process (``tenure serve ingest``)."""

from __future__ import annotations

from datetime import timedelta

import uvicorn
from psycopg_pool import ConnectionPool

from services.ingest.app import create_app
from tenure.config import TenureConfig
from tenure.eventlog.publisher import EventPublisher
from tenure.runtime.database import database_pool_options


def serve(config: TenureConfig, host: str, port: int) -> None:
    """Serve the ingest API until interrupted."""
    if not config.kafka_bootstrap or not config.database_url:
        raise SystemExit("TENURE_KAFKA_BOOTSTRAP and TENURE_DATABASE_URL must be set")
    pool = ConnectionPool(
        config.database_url, min_size=2, max_size=16, open=True, **database_pool_options(check=True)
    )
    publisher = EventPublisher(config.kafka_bootstrap)
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
            host=host,
            port=port,
            log_level=config.log_level.lower(),
            access_log=False,
            log_config=None,  # records go to the handler the tenure command set up
        )
    finally:
        publisher.close()
        pool.close()
