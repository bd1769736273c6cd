"""The projector worker: a faust app running the live projection.

The hot path (canonical topics -> raw states in Postgres, offsets committed after the
write is durable) is :class:`streams.projector.consumer.ProjectorHotPath`, a service the
faust worker starts and stops; it owns an aiokafka consumer in the consumer group
``tenure-projector`` (faust's own per-message consumer caps a process at about 4,300
records/s here, see ``docs/design/projector-throughput.md``). A faust timer runs the
derive stage: queued persons and devices become read-model rows and transitions, which
are then published. The two stages share nothing but Postgres, so derive may lag the
apply stage and catches up in its time slices. The process (pool, publisher, projector,
faust worker) is wired by :mod:`tenure.entrypoints.projector`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import faust

from streams.faust_app import tenure_faust_app
from streams.projector import metrics
from streams.projector.consumer import HotPathSettings, ProjectorHotPath
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.projection.catch_up import verify_convergence
from tenure.projection.projector import Projector
from tenure.runtime.database import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

APP_ID = "tenure-projector-runtime"
"""The faust app's id (timers, CLI). Not a consumer group: faust subscribes to nothing."""
GROUP_ID = "tenure-projector"
"""The consumer group of the hot path (the group the projector has always committed in)."""
BATCH_MAX = 10000
SETTLE_EVERY_S = 1.0
DERIVE_BUDGET_S = 0.8
"""Seconds of one derive slice when the apply stage is caught up (slices then run back to
back)."""
STARVED_AFTER_S = 10.0
"""While the apply stage is behind, derive waits; but at least every this many seconds it
gets a small slice (a fifth of the budget, 50 keys), so a sustained overload cannot stop
the read models altogether."""
SWITCH_INTERVAL_S = 0.0005
"""The interpreter's thread switch interval in the worker (see
``tenure.entrypoints.projector.run``, which starts the worker)."""
VERIFY_EVERY_S = 10.0
"""How often the worker advances the convergence checkpoint (see
``tenure.projection.catch_up.verify_convergence``)."""
STALE_PER_SETTLE = 5000
"""Persons whose time-driven change the watermark reached, queued per tick (earliest due
first)."""


def _report(projector: Projector) -> None:
    persons, devices = projector.backlog()
    metrics.BACKLOG.labels("person").set(persons)
    metrics.BACKLOG.labels("device").set(devices)
    device_deltas, person_deltas = projector.pending_deltas()
    metrics.DELTAS.labels("device").set(device_deltas)
    metrics.DELTAS.labels("person").set(person_deltas)


def create_app(
    bootstrap: str,
    datadir: Path,
    projector: Projector,
    *,
    batch_max: int = BATCH_MAX,
    derive_budget_s: float = DERIVE_BUDGET_S,
) -> faust.App:
    """Build the faust application for the given broker and projector."""
    app = tenure_faust_app(APP_ID, bootstrap, datadir)
    settings = HotPathSettings(bootstrap, GROUP_ID, CANONICAL_TOPICS, batch_max=batch_max)

    hot: list[ProjectorHotPath] = []
    last_slice = [time.monotonic()]

    class HotPath(ProjectorHotPath):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(projector, settings, **kwargs)
            hot.append(self)

    app.service(HotPath)

    async def settle_once() -> bool:
        """One derive slice; True when it found work."""
        kinds_before = dict(projector.totals.by_kind)
        # The apply stage comes first: while it is behind, derive gets small slices.
        behind = any(h.behind for h in hot)
        if behind and time.monotonic() - last_slice[0] < STARVED_AFTER_S:
            await asyncio.sleep(SETTLE_EVERY_S)  # the apply stage has the process
            return False
        last_slice[0] = time.monotonic()
        budget, chunk = (derive_budget_s / 5, 50) if behind else (derive_budget_s, None)
        derived = await asyncio.to_thread(
            projector.settle, budget, chunk, 0 if behind else STALE_PER_SETTLE
        )
        await asyncio.to_thread(_report, projector)
        metrics.DERIVED.labels("person").inc(derived.persons)
        metrics.DERIVED.labels("device").inc(derived.devices)
        for kind, total in projector.totals.by_kind.items():
            metrics.TRANSITIONS.labels(kind).inc(total - kinds_before.get(kind, 0))
        if behind:  # leave most of the time to the apply stage
            await asyncio.sleep(SETTLE_EVERY_S - budget)
        return bool(derived.persons or derived.devices)

    @app.task  # type: ignore[untyped-decorator]
    async def settle() -> None:
        """Derive what batches queued and time made stale, back to back while there is work
        (slices while the apply stage is behind); publish transitions."""
        while True:
            try:
                busy = await settle_once()
            except DATABASE_UNAVAILABLE as exc:  # the hot path reports not-ready
                log.warning("settling waits for the database (%s)", exc)
                busy = False
            except Exception:
                log.exception("settling failed; will retry")
                busy = False
            if not busy:
                await asyncio.sleep(SETTLE_EVERY_S)

    @app.timer(VERIFY_EVERY_S)  # type: ignore[untyped-decorator]
    async def verify() -> None:
        """Advance the convergence checkpoint over archived events this group applied."""
        try:
            await asyncio.to_thread(verify_convergence, projector.pool)
        except Exception:
            log.exception("verifying the convergence checkpoint failed; will retry")

    return app
