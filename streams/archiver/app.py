"""The archiver worker: a faust app running the archive's batch loop and the ledger tidy.

The consume loop is the one every worker shares (:class:`tenure.eventlog.batch_loop.BatchLoop`)
with the archiver's handler (:class:`streams.archiver.worker.ArchiveBatches`), in the
consumer group ``tenure-archiver``; a timer tidies the ingest ledger every
``TIDY_SECONDS``. faust runs the process (:mod:`streams.faust_app`); the process (pool,
publisher, metrics) is wired by :mod:`tenure.entrypoints.archiver`.
"""

from __future__ import annotations

from pathlib import Path

import faust
from psycopg_pool import ConnectionPool

from streams.archiver.worker import GROUP_ID, TIDY_SECONDS, ArchiveBatches, consume_settings
from streams.faust_app import consume_with, tenure_faust_app
from tenure.eventlog.publisher import EventPublisher

APP_ID = "tenure-archiver-runtime"
"""The faust app's id (timers). Not a consumer group: faust subscribes to nothing."""


def create_app(
    bootstrap: str,
    datadir: Path,
    pool: ConnectionPool,
    publisher: EventPublisher,
    *,
    group_id: str = GROUP_ID,
) -> faust.App:
    """Build the archiver's faust application for the given broker, pool and publisher
    (dead letters)."""
    app = tenure_faust_app(APP_ID, bootstrap, datadir)
    batches = ArchiveBatches(pool, publisher)
    consume_with(app, batches, consume_settings(bootstrap, group_id))

    @app.timer(TIDY_SECONDS)  # type: ignore[untyped-decorator]
    async def tidy() -> None:
        """Sweep and vacuum ``ingest_pending``."""
        await batches.tidy_once()

    return app
