"""The SDK validator's process (``tenure worker sdk-validator``): forwards valid SDK events
to their canonical topic and dead-letters the rest (``streams.sdk_validator.app``)."""

from __future__ import annotations

from datetime import timedelta

from streams.sdk_validator.app import STAGE, create_app
from tenure.config import Settings
from tenure.entrypoints.bootstrap import (
    database_pool,
    faust_datadir,
    run_faust_worker,
    serve_metrics,
)
from tenure.eventlog.deadletter import DeadLetterSink
from tenure.eventlog.publisher import EventPublisher
from tenure.privacy.boundary import VaultConnection
from tenure.runtime.malloc_arenas import limit_malloc_arenas


def run(settings: Settings) -> None:
    """Validate until stopped; ``/metrics`` on ``TENURE_SDK_VALIDATOR_METRICS_PORT``.

    The database holds the token vault and the dead letters.
    """
    config = settings.config
    limit_malloc_arenas(settings.config.malloc_arenas)  # TENURE_MALLOC_ARENAS, first
    serve_metrics(settings, config.sdk_validator_metrics_port, loop_liveness=True)
    bootstrap = settings.broker()
    # At most one connection, made when a batch first parks a dead letter; the batch loop
    # retries while the database is away.
    pool = database_pool(settings, min_size=0, max_size=1, short_timeouts=False)
    publisher = EventPublisher(bootstrap)
    faust_app = create_app(
        bootstrap,
        faust_datadir(settings),
        timedelta(seconds=config.future_tolerance_s),
        pool=pool,
        vault=VaultConnection(settings.database_url),
        publisher=publisher,
        dead_letters=DeadLetterSink(STAGE, publisher),
    )
    try:
        run_faust_worker(faust_app, settings)
    finally:
        publisher.close()
        pool.close()
