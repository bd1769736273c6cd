"""The SDK validator's process (``tenure worker sdk-validator``): a faust agent that forwards
valid SDK events to their canonical topic and dead-letters the rest."""

from __future__ import annotations

from datetime import timedelta

from streams.sdk_validator.app import create_app
from tenure.config import Settings
from tenure.entrypoints.bootstrap import faust_datadir, run_faust_worker, serve_metrics


def run(settings: Settings) -> None:
    """Validate until stopped; ``/metrics`` on ``TENURE_SDK_VALIDATOR_METRICS_PORT``.

    The database holds the token vault and the dead letters.
    """
    config = settings.config
    serve_metrics(settings, config.sdk_validator_metrics_port)
    faust_app = create_app(
        settings.broker(),
        faust_datadir(settings),
        timedelta(seconds=config.future_tolerance_s),
        settings.database_url,
    )
    run_faust_worker(faust_app, settings)
