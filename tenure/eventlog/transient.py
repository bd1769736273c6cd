"""Transient failures, and the one way a worker waits them out.

A failure is *transient* when it is about the moment, not the data: the database away, a
transaction aborted by another one (:data:`tenure.storage.connection.DATABASE_TRANSIENT`), a
broker that did not acknowledge (:class:`~tenure.eventlog.publisher.PublishFailed`). Running
the same work again succeeds once the moment has passed, so a worker never dead-letters for
it and never exits: it waits with :func:`until_transient_passes`, the one waiting policy of
every worker, used by the batch loop's prepare and write steps and by the projector's own
tasks (derive, publish, aggregates):

- the work runs in a thread; after a transient failure the caller waits
  (:class:`~tenure.runtime.database.Backoff`: 0.5 s doubling to 5 s) and runs it again,
  for as long as it takes;
- while any part of the worker is waiting, ``tenure_worker_ready`` is 0; it is 1 again once
  every part that waited has succeeded (so one part's success does not hide another's
  wait);
- a consume loop's heartbeat beats on each wait (waiting out a blip is not a stuck loop);
- any other failure propagates at once (the caller decides: the batch loop exits so the
  records are delivered again, a task logs and tries again on its next turn).

A deadlock or serialization failure is first retried at once by
:func:`tenure.storage.connection.retry_conflicts` where a stage runs its transaction; only
when that gives up does it reach this wait.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Gauge

from tenure.eventlog.publisher import PublishFailed
from tenure.runtime.database import Backoff
from tenure.runtime.liveness import Heartbeat
from tenure.storage.connection import DATABASE_TRANSIENT

R = TypeVar("R")
log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (*DATABASE_TRANSIENT, PublishFailed)
"""Failures about the moment, not the data: the database away or a conflicting
transaction, a broker that did not acknowledge. Waited out; never dead-lettered."""

WORKER_READY = Gauge(
    "tenure_worker_ready",
    "1 while the worker's database writes succeed; 0 while it waits for the database "
    "(it retries the batch with backoff, nothing is skipped).",
    ["worker"],
)

_waiting: Counter[str] = Counter()
"""Parts of each worker waiting out a transient failure now."""
_waiting_lock = threading.Lock()


def _waits(worker: str, change: int) -> None:
    with _waiting_lock:
        _waiting[worker] += change
        WORKER_READY.labels(worker).set(0 if _waiting[worker] > 0 else 1)


def ready(worker: str) -> None:
    """Report ``worker`` ready unless a part of it is waiting (a consume loop starting)."""
    _waits(worker, 0)


async def until_transient_passes(
    what: str,
    work: Callable[[], R],
    *,
    worker: str,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
    heartbeat: Heartbeat | None = None,
    stopping: Callable[[], bool] = lambda: False,
    backoff: Backoff | None = None,
) -> R:
    """Run ``work()`` in a thread; while it fails with one of ``transient``, report
    ``worker`` not ready, wait (``backoff``, default :class:`Backoff`) and run it again.

    ``heartbeat`` beats on each wait (a consume loop's). Once ``stopping()`` is true a
    transient failure propagates instead of being waited out. Any other failure propagates
    at once.
    """
    waits = backoff or Backoff()
    waiting = False
    try:
        while True:
            try:
                result = await asyncio.to_thread(work)
            except transient as exc:
                if stopping():
                    raise
                if not waiting:
                    waiting = True
                    _waits(worker, +1)
                delay = waits.next_delay()
                log.warning(
                    "%s: %s failed (%s: %s); retrying in %.1f s",
                    worker, what, type(exc).__name__, exc, delay,
                )  # fmt: skip
                if heartbeat is not None:
                    heartbeat.beat()  # waiting out a blip is not a stuck loop
                await asyncio.sleep(delay)
                continue
            if waiting:
                log.warning("%s: %s succeeded again; going on", worker, what)
            return result
    finally:
        if waiting:
            _waits(worker, -1)


__all__ = ["TRANSIENT", "WORKER_READY", "ready", "until_transient_passes"]
