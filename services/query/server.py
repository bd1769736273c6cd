"""Running the query service as a process (``tenure serve query``)."""

from __future__ import annotations

import uvicorn
from psycopg_pool import ConnectionPool

from services.query.app import create_app
from tenure.config import TenureConfig
from tenure.runtime.database import database_pool_options


def serve(config: TenureConfig, host: str, port: int) -> None:
    """Serve the query API until interrupted (no access log: URLs carry person ids)."""
    if not config.database_url:
        raise SystemExit("TENURE_DATABASE_URL must be set")
    with ConnectionPool(
        config.database_url, min_size=1, max_size=8, **database_pool_options(check=True)
    ) as pool:
        uvicorn.run(
            create_app(pool=pool),
            host=host,
            port=port,
            log_level=config.log_level.lower(),
            access_log=False,
            log_config=None,  # records go to the handler the tenure command set up
        )
