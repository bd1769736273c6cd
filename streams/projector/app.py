"""The projector: a faust agent over the canonical topics feeding the live projection.

Each ``take_events`` batch is applied to Postgres (one transaction, in a worker thread),
then queued views are derived and transitions published. faust acknowledges a batch's
events only when the agent asks for the next batch (``Stream.take_events``), so offsets are
committed after the batch is durable. A batch that cannot be applied stops the worker
(exit code 70) rather than being acknowledged: the supervisor restarts it and the
uncommitted records are delivered again, harmlessly (merges are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust

from streams.faust_app import tenure_faust_app
from streams.projector import metrics
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.projection.projector import IncomingRecord, Projector

log = logging.getLogger(__name__)

APP_ID = "tenure-projector"
BATCH_MAX = 2000
BATCH_WITHIN_S = 0.5


def _report(projector: Projector) -> None:
    persons, devices = projector.backlog()
    metrics.BACKLOG.labels("person").set(persons)
    metrics.BACKLOG.labels("device").set(devices)


def create_app(bootstrap: str, datadir: Path, projector: Projector) -> faust.App:
    """Build the faust application for the given broker and projector."""
    app = tenure_faust_app(
        APP_ID,
        bootstrap,
        datadir,
        stream_buffer_maxsize=BATCH_MAX * 2,
        broker_max_poll_records=BATCH_MAX,
    )
    sources = app.topic(*CANONICAL_TOPICS, key_serializer="raw", value_serializer="raw")
    lock = asyncio.Lock()  # one projector step at a time per process

    @app.agent(sources)
    async def project(stream: Any) -> Any:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            records = [
                IncomingRecord(e.message.topic, e.message.partition, e.message.offset,
                               e.message.key, e.message.value)
                for e in events
            ]  # fmt: skip
            try:
                async with lock:
                    with metrics.APPLY_SECONDS.time():
                        before = projector.totals.applied, projector.totals.dead_lettered
                        await asyncio.to_thread(projector.apply, records)
                    derived = await asyncio.to_thread(projector.derive)
                    published = await asyncio.to_thread(projector.publish_transitions)
            except Exception:
                log.exception("a batch could not be projected; stopping so it is redelivered")
                os._exit(70)
            metrics.BATCH_RECORDS.observe(len(records))
            metrics.RECORDS.labels("applied").inc(projector.totals.applied - before[0])
            metrics.RECORDS.labels("dead_lettered").inc(projector.totals.dead_lettered - before[1])
            metrics.DERIVED.labels("person").inc(derived.persons)
            metrics.DERIVED.labels("device").inc(derived.devices)
            metrics.TRANSITIONS.inc(published)
            yield len(records)

    @app.timer(2.0)  # type: ignore[untyped-decorator]
    async def settle() -> None:
        """Derive what time made stale and what batches left queued; publish transitions."""
        try:
            async with lock:
                derived = await asyncio.to_thread(projector.settle)
                published = await asyncio.to_thread(projector.publish_transitions)
                await asyncio.to_thread(_report, projector)
        except Exception:
            log.exception("settling failed; will retry")
            return
        metrics.DERIVED.labels("person").inc(derived.persons)
        metrics.DERIVED.labels("device").inc(derived.devices)
        metrics.TRANSITIONS.inc(published)

    return app


def run(
    bootstrap: str, database_url: str, datadir: Path, allowed_lateness: timedelta, log_level: str
) -> None:
    """Run one projector worker process until stopped."""
    from psycopg_pool import ConnectionPool

    from tenure.eventlog.publisher import EventPublisher

    pool = ConnectionPool(database_url, min_size=2, max_size=4, open=True)
    publisher = EventPublisher(bootstrap)
    projector = Projector(pool, publisher, allowed_lateness=allowed_lateness)
    app = create_app(bootstrap, datadir, projector)
    try:
        faust.Worker(app, loglevel=log_level, quiet=True).execute_from_commandline()
    finally:
        publisher.close()
        pool.close()
