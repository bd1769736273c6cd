"""The projector's process (``tenure worker projector``): the live projection of the canonical
topics into raw states, read models and transitions (``streams.projector.app``)."""

from __future__ import annotations

import gc
import sys
from datetime import timedelta

from streams.projector.app import ALL_STAGES, SWITCH_INTERVAL_S, Stage, create_app, parse_stages
from tenure.config import Settings
from tenure.entrypoints.bootstrap import (
    database_pool,
    faust_datadir,
    run_faust_worker,
    serve_metrics,
)
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.runtime.malloc_arenas import limit_malloc_arenas
from tenure.storage.notifications import DERIVE_QUEUE, PERSONS_CHANGED, ChannelListener

__all__ = ["parse_stages", "run"]


def run(settings: Settings, stages: frozenset[Stage] = ALL_STAGES) -> None:
    """Run one projector worker until stopped; ``/metrics`` on
    ``TENURE_PROJECTOR_METRICS_PORT``.

    ``stages``: all three, or some of them (``tenure up`` runs ``apply``, ``derive`` and
    ``follow`` in three processes: each then has an interpreter of its own; a stage whose
    work another process writes is woken by Postgres notifications,
    ``tenure/storage/notifications.py``).
    """
    limit_malloc_arenas(settings.config.malloc_arenas)  # TENURE_MALLOC_ARENAS, first
    serve_metrics(settings, settings.config.projector_metrics_port, loop_liveness=True)
    # The hot path allocates millions of short-lived objects over a large live heap of
    # cached states: collecting the young generation less often saves ~18% of its CPU
    # (see docs/design/projector-throughput.md).
    gc.set_threshold(100_000, 50, 100)
    # The write thread waits on Postgres many times per batch while the event loop thread
    # decodes and folds the next one; with the default 5 ms switch interval each wake-up
    # of the write thread waits for the GIL (a convoy), and the writes fall behind.
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    bootstrap = settings.broker()
    allowed_lateness = timedelta(seconds=settings.config.allowed_lateness_s)
    # Short timeouts: a dead database is an error within seconds (the batch is written
    # again later), and a restarted one is used again within seconds.
    # apply (prepare + write), two derive tasks (guard + pass each), the aggregates stage
    # (guard + drain), publishing transitions, the derive and follow backlog gauges, the
    # convergence checkpoint: each may hold a connection at once
    pool = database_pool(settings, min_size=2, max_size=12)
    publisher = EventPublisher(bootstrap)
    projector = Projector(
        pool,
        publisher,
        allowed_lateness=allowed_lateness,
        cache_bytes=settings.config.projector_cache_mb << 20,  # TENURE_PROJECTOR_CACHE_MB
        aggregates_in_derive=False,  # the worker runs the aggregates stage on its own cadence
        audience_stage=settings.config.audience_stage,  # TENURE_AUDIENCES
    )
    listeners = {
        "queue": ChannelListener(settings.database_url, DERIVE_QUEUE)
        if "derive" in stages and "apply" not in stages
        else None,
        "persons": ChannelListener(settings.database_url, PERSONS_CHANGED)
        if "follow" in stages and "derive" not in stages
        else None,
    }
    app = create_app(
        bootstrap, faust_datadir(settings), projector, stages=stages,
        queue_listener=listeners["queue"], persons_listener=listeners["persons"],
    )  # fmt: skip
    try:
        run_faust_worker(app, settings)
    finally:
        for listener in listeners.values():
            if listener is not None:
                listener.close()
        publisher.close()
        pool.close()
