"""The aggregates stage as the projector calls it: drain the queues, record the as-of instant.

The stage reaches storage through seam objects (:class:`~tenure.storage.seam.AggregateDrains`,
:class:`~tenure.storage.seam.Progress`); :func:`refresh` runs it over Postgres.
"""

from __future__ import annotations

from datetime import timedelta

from psycopg_pool import ConnectionPool

from tenure.domain.config import LifecycleConfig
from tenure.storage.connection import retry_conflicts
from tenure.storage.postgres_store import PostgresAggregates, PostgresProgress
from tenure.storage.progress import projection_watermark
from tenure.storage.seam import AggregateDrains, Progress

__all__ = ["follow_persons", "projection_watermark", "refresh"]


def refresh(
    pool: ConnectionPool,
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    *,
    chunk: int = 2000,
) -> int:
    """Bring the survival aggregates up to date with ``persons``; return persons moved."""
    with pool.connection() as conn:
        return follow_persons(
            PostgresAggregates(conn), PostgresProgress(conn), allowed_lateness, config, chunk=chunk
        )


def follow_persons(
    aggregates: AggregateDrains,
    progress: Progress,
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    *,
    chunk: int = 2000,
) -> int:
    """Drain the survival queue (a step the database aborts for a conflict runs again) and
    the churn model's queue, then move the as-of instant to the watermark; return persons
    moved in the survival aggregates."""
    moved = 0
    while True:
        n = retry_conflicts(
            lambda: aggregates.drain_survival(chunk), tries=11, what="survival stage"
        )
        moved += n
        if n == 0:
            break
    while aggregates.drain_churn(chunk):  # the churn model's pending queue
        pass
    as_of = progress.watermark(allowed_lateness)
    if as_of is not None:
        aggregates.record_as_of(as_of, config.inactivity_window_days)
    return moved
