"""The event-time instant projections are derived as of."""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_ALLOWED_LATENESS = timedelta(hours=1)
"""How far behind the latest event time the watermark stays, so that slightly late events
still land before time-driven stage changes are decided."""


def watermark(max_event_time: datetime | None, allowed_lateness: timedelta) -> datetime | None:
    """The stream's event-time watermark: the latest event time seen, less the lateness."""
    return None if max_event_time is None else max_event_time - allowed_lateness
