"""Operating the pipeline (``tenure catch-up``, ``tenure deadletters redrive``): bring the
live projection up to the archive, give dead letters back to their stage.

Both need the database; the broker is optional (given when one answers): without it
nothing is re-published, the rest is done.
"""

from __future__ import annotations

from collections.abc import Sequence

from tenure.config import Settings
from tenure.entrypoints.bootstrap import database_pool
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.catch_up import Convergence, converge
from tenure.projection.redrive import Redriven, redrive
from tenure.storage.dead_letters import list_letters


def catch_up(settings: Settings, *, from_start: bool = False) -> Convergence:
    """Re-apply archived events after the convergence checkpoint (all of them with
    ``from_start``); poison events are dead-lettered."""
    bootstrap = settings.kafka_bootstrap
    publisher = EventPublisher(bootstrap) if bootstrap else None
    try:
        with database_pool(settings, min_size=1, max_size=1, short_timeouts=False) as pool:
            return converge(pool, publisher, from_start=from_start)
    finally:
        if publisher is not None:
            publisher.close()


def redrive_letters(
    settings: Settings, ids: Sequence[int] | None, *, stage: str | None = None
) -> Redriven:
    """Re-drive the pending dead letters ``ids`` (``None``: every pending one, of ``stage``
    when given): republish, re-apply or re-queue each, and mark it."""
    bootstrap = settings.kafka_bootstrap
    publisher = EventPublisher(bootstrap) if bootstrap else None
    try:
        with database_pool(settings, min_size=1, max_size=1, short_timeouts=False) as pool:
            with pool.connection() as conn:
                letters = list_letters(conn, stage=stage, pending_only=True, ids=ids)
            return redrive(pool, letters, publisher)
    finally:
        if publisher is not None:
            publisher.close()
