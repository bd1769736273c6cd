"""The query service's process (``tenure serve query``): persons, devices, survival, churn,
the dashboard, /metrics, /healthz."""

from __future__ import annotations

import uvicorn

from services.query.app import create_app
from tenure.config import Settings
from tenure.entrypoints.bootstrap import database_pool


def run(settings: Settings) -> None:
    """Serve the query API on ``TENURE_INGEST_HOST:TENURE_QUERY_PORT`` until interrupted.

    No access log: URLs carry person ids.
    """
    config = settings.config
    with database_pool(settings, min_size=1, max_size=8, check=True) as pool:
        uvicorn.run(
            create_app(pool=pool),
            host=config.ingest_host,
            port=config.query_port,
            log_level=config.log_level.lower(),
            access_log=False,
            log_config=None,  # records go to the handler the tenure command set up
        )
