"""The replay's process (``tenure replay``): rebuild every lifecycle read model from the
durable archive and swap it in, optionally serving its progress on ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from tenure.config import Settings
from tenure.entrypoints import replay_metrics
from tenure.entrypoints.bootstrap import serve_metrics
from tenure.projection.replay import ReplayResult, replay
from tenure.runtime.malloc_arenas import limit_malloc_arenas

Progress = Callable[[str, int, int], None]
"""Told ``(phase, done, total)`` as the replay goes (the command line draws a bar)."""


def run(
    settings: Settings,
    *,
    as_of: datetime | None = None,
    metrics_port: int | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    """Replay the archive as of ``as_of`` (default: the watermark).

    ``metrics_port``: serve ``tenure_replay_*`` on that port's ``/metrics`` while it runs
    (and after, for as long as the process lives).
    """
    limit_malloc_arenas(settings.config.malloc_arenas)  # TENURE_MALLOC_ARENAS, first
    if metrics_port is not None:
        serve_metrics(settings, metrics_port)
    replay_metrics.start()

    def report(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)
        replay_metrics.report(phase, done, total)

    result = replay(
        settings.database_url,
        as_of=as_of,
        allowed_lateness=timedelta(seconds=settings.config.allowed_lateness_s),
        progress=report,
        workers=settings.config.replay_workers,
        memory_mb=settings.config.projector_cache_mb,
    )
    replay_metrics.finish()
    return result
