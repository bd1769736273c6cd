"""Prometheus gauges of a running ``tenure replay`` (``--metrics-port``).

A replay is a one-off command, so it serves its own ``/metrics`` while it runs (and for
``--metrics-hold`` seconds after it ends, so a scraper with a 15 s interval still sees the
finished state). Phases are the replay's own: ``planning`` (an archive replayed in
parts), ``reading archive``, ``folding`` (parts folded), ``writing``.
The query service reports the outcome of the last replay durably
(``tenure_replay_last_*``, from ``projection_checkpoints``).
"""

from __future__ import annotations

import time

from prometheus_client import Gauge

PHASE_DONE = Gauge(
    "tenure_replay_phase_done", "Items a running replay has done in a phase.", ["phase"]
)
PHASE_TOTAL = Gauge("tenure_replay_phase_items", "Items of a replay phase.", ["phase"])
PROGRESS = Gauge("tenure_replay_progress_ratio", "Share of a replay phase done (0..1).", ["phase"])
RUNNING = Gauge("tenure_replay_running", "1 while a replay runs, 0 once it has finished.")
STARTED = Gauge(
    "tenure_replay_started_timestamp_seconds", "When the replay started (Unix seconds)."
)


def start() -> None:
    """Mark the replay as started."""
    STARTED.set(time.time())
    RUNNING.set(1)


def report(phase: str, done: int, total: int) -> None:
    """Record the progress of one phase (the replay's progress callback)."""
    PHASE_DONE.labels(phase).set(done)
    PHASE_TOTAL.labels(phase).set(total)
    PROGRESS.labels(phase).set(min(1.0, done / total) if total > 0 else 1.0)


def finish() -> None:
    """Mark the replay as finished."""
    RUNNING.set(0)
