"""The archiver's process (``tenure worker archiver``): canonical topics -> event archive."""

from __future__ import annotations

from streams.archiver.app import create_app
from streams.archiver.worker import GROUP_ID
from tenure.config import Settings
from tenure.entrypoints.bootstrap import (
    database_pool,
    faust_datadir,
    run_faust_worker,
    serve_metrics,
)
from tenure.eventlog.publisher import EventPublisher
from tenure.runtime.malloc_arenas import limit_malloc_arenas


def run(settings: Settings, *, group_id: str = GROUP_ID) -> None:
    """Archive until stopped; ``/metrics`` and ``/healthz`` on
    ``TENURE_ARCHIVER_METRICS_PORT``.

    Several processes with the same ``group_id`` share the partitions.
    """
    limit_malloc_arenas(settings.config.malloc_arenas)  # TENURE_MALLOC_ARENAS, first
    serve_metrics(settings, settings.config.archiver_metrics_port, loop_liveness=True)
    bootstrap = settings.broker()
    # The database was checked once at start (one clear line if wrong); from here on the
    # archiver waits out outages.
    with database_pool(settings, min_size=1, max_size=2, open=False) as pool:
        publisher = EventPublisher(bootstrap)
        try:
            run_faust_worker(
                create_app(bootstrap, faust_datadir(settings), pool, publisher, group_id=group_id),
                settings,
            )
        finally:
            publisher.close()
