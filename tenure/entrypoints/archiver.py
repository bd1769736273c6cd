"""The archiver's process (``tenure worker archiver``): canonical topics -> event archive."""

from __future__ import annotations

from streams.archiver.worker import GROUP_ID, Archiver
from tenure.config import Settings
from tenure.entrypoints.bootstrap import database_pool, serve_metrics, stop_on_signals


def run(settings: Settings, *, group_id: str = GROUP_ID) -> None:
    """Archive until SIGINT or SIGTERM; ``/metrics`` on ``TENURE_ARCHIVER_METRICS_PORT``.

    Several processes with the same ``group_id`` share the partitions.
    """
    serve_metrics(settings, settings.config.archiver_metrics_port, loop_liveness=True)
    stop = stop_on_signals()
    # The database was checked once at start (one clear line if wrong); from here on the
    # archiver waits out outages.
    with database_pool(settings, min_size=1, max_size=2, open=False) as pool:
        archiver = Archiver(settings.broker(), pool, group_id=group_id)
        try:
            archiver.run(stop)
        finally:
            archiver.close()
