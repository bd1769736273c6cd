"""The base of the query service's Prometheus collectors that read Postgres when scraped.

Each collector (business numbers, survival, churn) is one module-level instance, registered in
the default registry the first time the service attaches its connection pool; attaching again
(a test app, a restarted lifespan) only points it at the new pool.
"""

from __future__ import annotations

from typing import Self

from prometheus_client.core import REGISTRY
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

__all__ = ["PoolGauges"]


class PoolGauges(Collector):
    """A collector reading the pool it was last attached to (none before: no samples)."""

    pool: ConnectionPool | None = None
    _registered: bool = False

    def attach(self, pool: ConnectionPool) -> Self:
        """Read from ``pool`` from now on; register in the default registry once."""
        self.pool = pool
        if not self._registered:
            REGISTRY.register(self)
            self._registered = True
        return self
