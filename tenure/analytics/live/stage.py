"""The aggregates stage as the projector calls it: drain the queue, record the as-of instant."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tenure.analytics.live import churn_model
from tenure.analytics.live.store import drain, record_as_of
from tenure.domain.config import LifecycleConfig
from tenure.domain.watermark import watermark
from tenure.storage.connection import retry_conflicts

__all__ = ["projection_watermark", "refresh"]

log = logging.getLogger(__name__)


def projection_watermark(conn: psycopg.Connection[Any], lateness: timedelta) -> datetime | None:
    """The live projection's as-of instant: the latest event time seen less the lateness."""
    row = conn.execute("SELECT max(max_event_time) FROM projection_progress").fetchone()
    return watermark(row[0] if row else None, lateness)


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
