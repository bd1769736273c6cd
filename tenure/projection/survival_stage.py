"""The aggregates stage as the projector calls it: drain the queue, record the as-of instant."""

from __future__ import annotations

from datetime import timedelta

from psycopg_pool import ConnectionPool

from tenure.domain.config import LifecycleConfig
from tenure.storage import churn_model
from tenure.storage.connection import retry_conflicts
from tenure.storage.progress import projection_watermark
from tenure.storage.survival_aggregates import drain, record_as_of

__all__ = ["projection_watermark", "refresh"]


def refresh(
    pool: ConnectionPool,
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    *,
    chunk: int = 2000,
) -> int:
    """Bring the survival aggregates up to date with ``persons``; return persons moved."""
    moved = 0
    with pool.connection() as conn:
        while True:
            n = retry_conflicts(lambda: drain(conn, limit=chunk), tries=11, what="survival stage")
            moved += n
            if n == 0:
                break
        while churn_model.drain(conn, limit=chunk):  # the churn model's pending queue
            pass
        as_of = projection_watermark(conn, allowed_lateness)
        if as_of is not None:
            record_as_of(conn, as_of, config.inactivity_window_days)
    return moved
