"""How far the projection has read the log: the latest event time and the watermark.

``projection_progress`` holds, per topic partition, the latest event time applied; the
projection's as-of instant is its maximum less the allowed lateness
(:func:`tenure.domain.watermark.watermark`). The derive pass, the live aggregates stage and
the dashboard read it here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tenure.domain.watermark import watermark
from tenure.storage.connection import Conn

__all__ = ["max_event_time", "projection_watermark"]


def max_event_time(conn: Conn) -> datetime | None:
    """The latest event time the projection has applied (``None`` before any event)."""
    row = conn.execute("SELECT max(max_event_time) FROM projection_progress").fetchone()
    return row[0] if row else None


def projection_watermark(conn: Conn, lateness: timedelta) -> datetime | None:
    """The live projection's as-of instant: the latest event time seen less the lateness."""
    return watermark(max_event_time(conn), lateness)
