"""The projector worker: a faust app running the live projection.

The hot path (canonical topics -> raw states in Postgres, offsets committed after the
write is durable) is the batch loop every worker shares
(:class:`tenure.eventlog.batch_loop.BatchLoop`) with the projector's handler
(:class:`streams.projector.consumer.ProjectorBatches`), a service the faust worker starts
and stops, in the consumer group ``tenure-projector`` (faust's own per-message consumer caps
a process at about 4,300 records/s here, see ``docs/design/projector-throughput.md``;
faust's role is described in :mod:`streams.faust_app`). A task runs the
derive stage: queued persons and devices become read-model rows and transitions, which
are then published. The two stages share nothing but Postgres, so derive may lag the
apply stage and catches up in its time slices; it wakes as soon as a batch is written,
and keeps a share of the process while the apply stage is behind. The aggregates stage
(survival aggregates, churn model) runs in its own task and thread every
``AGGREGATES_EVERY_S``, and transitions are published by a task of their own, so neither
delays a person row. Every one of them, like the hot path, waits out a lost database the
one way (:func:`tenure.eventlog.transient.until_transient_passes`: backoff, not-ready
meanwhile, the same work again). The process (pool, publisher, projector,
faust worker) is wired by :mod:`tenure.entrypoints.projector`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import faust

from streams.faust_app import consume_with, tenure_faust_app
from streams.projector import metrics
from streams.projector.consumer import ProjectorBatches
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.eventlog.batch_loop import BatchLoop, ConsumeSettings
from tenure.eventlog.transient import until_transient_passes
from tenure.projection.audiences import AudienceTotals
from tenure.projection.catch_up import verify_convergence
from tenure.projection.projector import Projector
from tenure.runtime import liveness
from tenure.storage.connection import NO_CONNECTION
from tenure.storage.follow_backlog import follow_backlog
from tenure.storage.notifications import ChannelListener

log = logging.getLogger(__name__)

APP_ID = "tenure-projector-runtime"
"""The faust app's id (timers, CLI). Not a consumer group: faust subscribes to nothing."""
GROUP_ID = "tenure-projector"
"""The consumer group of the hot path (the group the projector has always committed in)."""
BATCH_MAX = 10000
SETTLE_EVERY_S = 1.0
"""With nothing queued, the derive stage looks again after this long, or as soon as the
apply stage has written a batch."""
DERIVE_BUDGET_S = 0.8
"""Seconds of one derive slice when the apply stage is caught up (slices then run back to
back)."""
DERIVE_TASKS = 2
"""Derive slices run by this many tasks at once, each in its own thread: a pass waits on
Postgres for about half its time, and a second pass (its claim skips the keys the other
holds, as a second worker's would) fills those waits."""
BEHIND_SHARE = 0.5
"""While the apply stage is behind, each derive task's slices are a quarter of the budget
and each is followed by a pause as long as the slice took divided by this share less the
slice: each task keeps this share of its time and never stops (a fact applied under
sustained load is derived after the backlog in front of it, not after the load ends; the
derive threads mostly wait on Postgres, while the apply stage's CPU is the event loop's)."""
AGGREGATES_EVERY_S = 5.0
"""The aggregates stage (survival aggregates, churn model queue) runs in its own task and
thread every this many seconds, apart from the derive slices: it lags ``persons`` by up to
about this long plus one drain, and never delays a person row."""
REPORT_EVERY_S = 2.0
"""How often the backlog gauges are refreshed, at most: the derive stage's (queued keys,
deltas, audience sizes) and the follow stage's (``tenure.storage.follow_backlog``)."""
REPORT_SHARE = 0.1
"""The gauges' queries take at most this share of one database connection's time: their
cost grows with the queues (at 1M persons with 2.2M queue marks and 1M deltas queued, one
refresh took ~2 s of Postgres, so every 2 s was a Postgres backend kept busy), and a refresh
then waits nine times as long as the last one took."""
SWITCH_INTERVAL_S = 0.0005
"""The interpreter's thread switch interval in the worker (see
``tenure.entrypoints.projector.run``, which starts the worker)."""
VERIFY_EVERY_S = 10.0
"""How often the worker advances the convergence checkpoint (see
``tenure.projection.catch_up.verify_convergence``)."""
STALE_PER_SETTLE = 5000
"""Persons whose time-driven change the watermark reached, queued per tick (earliest due
first)."""


Stage = Literal["apply", "derive", "follow"]
"""A part of the projector a process can run (``tenure worker projector --stages``):
``apply`` (the hot path and the convergence checkpoint), ``derive`` (the derive tasks and
the backlog gauges), ``follow`` (publishing transitions, the persons topic and audience
changes; the audience and aggregates stages; the follow backlog gauge)."""
STAGES: tuple[Stage, ...] = ("apply", "derive", "follow")
ALL_STAGES: frozenset[Stage] = frozenset(STAGES)


def parse_stages(text: str) -> frozenset[Stage]:
    """The stages a ``--stages`` value names: ``all``, or a comma-separated list of
    :data:`STAGES`. Raises ``ValueError`` for anything else."""
    if text.strip() == "all":
        return ALL_STAGES
    names = [name.strip() for name in text.split(",")]
    chosen = frozenset(s for s in STAGES if s in names)
    unknown = [name for name in names if name not in STAGES]
    if unknown or not chosen:
        raise ValueError(f"must be all or a list of {','.join(STAGES)}")
    return chosen


def _report(projector: Projector) -> None:
    persons, devices = projector.backlog()
    metrics.BACKLOG.labels("person").set(persons)
    metrics.BACKLOG.labels("device").set(devices)
    device_deltas, person_deltas = projector.pending_deltas()
    metrics.DELTAS.labels("device").set(device_deltas)
    metrics.DELTAS.labels("person").set(person_deltas)
    sizes = projector.audience_sizes()
    for audience, state in list(_AUDIENCE_STATES - set(sizes)):  # emptied since: 0
        metrics.AUDIENCE_MEMBERS.labels(audience, state).set(0)
    for (audience, state), n in sizes.items():
        metrics.AUDIENCE_MEMBERS.labels(audience, state).set(n)
    _AUDIENCE_STATES.update(sizes)


def _report_follow(projector: Projector) -> None:
    with projector.pool.connection() as conn:
        left = follow_backlog(conn, audiences=projector.audience_stage)
    for part, n in left.items():
        metrics.FOLLOW_BACKLOG.labels(part).set(n)


def _refresh_every(app: faust.App, what: str, refresh: Callable[[], None]) -> None:
    """A task that calls ``refresh`` (in a thread) every ``REPORT_EVERY_S``, or less often
    when it is costly (``REPORT_SHARE``); a failed refresh is logged and tried again."""

    @app.task  # type: ignore[untyped-decorator]
    async def report() -> None:
        while True:
            await asyncio.sleep(await asyncio.to_thread(refresh_once, refresh, what))


def refresh_once(refresh: Callable[[], None], what: str) -> float:
    """Run ``refresh`` once (a failure is logged, never raised); return the seconds until
    the next (:func:`report_pause`)."""
    started = time.monotonic()
    no_connection = False
    try:
        refresh()
    except NO_CONNECTION as exc:
        no_connection = True
        log.warning("reporting %s found no connection (%s); will retry", what, exc)
    except Exception as exc:
        log.warning("reporting %s failed (%s); will retry", what, exc)
    return report_pause(time.monotonic() - started, no_connection=no_connection)


def report_pause(took_s: float, *, no_connection: bool = False) -> float:
    """Seconds until the next gauge refresh after one that took ``took_s``: the refreshes
    start ``REPORT_EVERY_S`` apart, and use at most ``REPORT_SHARE`` of the time.

    ``no_connection``: the refresh gave up waiting for a connection (the pool's timeout,
    while the database is away). That wait ran no query, so it is not rationed: the next
    try is ``REPORT_EVERY_S`` later, and the gauges come back within seconds of the
    database. A query that failed after running (a statement timeout) is rationed like
    one that succeeded."""
    if no_connection:
        return REPORT_EVERY_S
    return max(REPORT_EVERY_S - took_s, took_s / REPORT_SHARE - took_s)


_AUDIENCE_STATES: set[tuple[str, str]] = set()
"""The (audience, state) gauges set so far."""


def count_audiences(totals: AudienceTotals, flows: Counter[tuple[str, str]],
                    suppressions: Counter[tuple[str, str]]) -> None:  # fmt: skip
    """Move the audience counters by what the stage wrote (its ``totals``) since
    ``flows``/``suppressions`` (copies of them), and update the copies."""
    for (audience, change), n in totals.flows.items():
        metrics.AUDIENCE_CHANGES.labels(audience, change).inc(n - flows[(audience, change)])
    for (audience, reason), n in totals.suppressions.items():
        metrics.AUDIENCE_SUPPRESSIONS.labels(audience, reason).inc(
            n - suppressions[(audience, reason)]
        )
    flows.update(totals.flows - flows)
    suppressions.update(totals.suppressions - suppressions)


def _no_beat() -> None:
    """The follow stage shares its process with a loop that beats for it."""


def _listen(app: faust.App, listener: ChannelListener, woken: asyncio.Event, what: str) -> None:
    """A task that sets ``woken`` whenever ``listener``'s channel is notified (one
    connection ``LISTEN``s, in a thread of its own)."""

    @app.task  # type: ignore[untyped-decorator]
    async def listen() -> None:
        while True:
            try:
                if await asyncio.to_thread(listener.wait, SETTLE_EVERY_S):
                    woken.set()
            except Exception:
                log.exception("listening for %s failed; will retry", what)
                await asyncio.sleep(SETTLE_EVERY_S)


def create_app(
    bootstrap: str,
    datadir: Path,
    projector: Projector,
    *,
    batch_max: int = BATCH_MAX,
    derive_budget_s: float = DERIVE_BUDGET_S,
    derive_tasks: int = DERIVE_TASKS,
    stages: frozenset[Stage] = ALL_STAGES,
    queue_listener: ChannelListener | None = None,
    persons_listener: ChannelListener | None = None,
) -> faust.App:
    """Build the faust application for the given broker and projector.

    ``stages`` (:data:`Stage`): all three in one process, or any of them alone (``tenure
    up`` runs each in a process of its own). A derive stage without the apply stage is
    woken by ``queue_listener`` when another process queues keys; a follow stage without
    the derive stage by ``persons_listener`` when another process writes ``persons``.
    """
    app = tenure_faust_app(APP_ID, bootstrap, datadir)
    metrics.STATE_CACHE.caches = projector.caches
    settings = ConsumeSettings(
        bootstrap, GROUP_ID, CANONICAL_TOPICS, "projector", batch_max=batch_max
    )
    hot: list[BatchLoop[Any]] = []  # filled as the app starts the batch loop
    if "apply" in stages:
        hot = consume_with(app, ProjectorBatches(projector), settings)

        @app.timer(VERIFY_EVERY_S)  # type: ignore[untyped-decorator]
        async def verify() -> None:
            """Advance the convergence checkpoint over archived events this group applied."""
            try:
                await asyncio.to_thread(verify_convergence, projector.pool)
            except Exception:
                log.exception("verifying the convergence checkpoint failed; will retry")

    followers_woken = asyncio.Event()  # a derive slice found transitions, or persons changed
    if "derive" in stages:
        _derive_stage(app, projector, settings, hot, followers_woken, queue_listener,
                      derive_budget_s=derive_budget_s, derive_tasks=derive_tasks)  # fmt: skip
    if "follow" in stages:
        if persons_listener is not None:
            _listen(app, persons_listener, followers_woken, "persons changes")
        alone = stages == {"follow"}  # no batch loop or derive loop: /healthz follows this
        _follow_stage(app, projector, settings, followers_woken, alone=alone)
    return app


def _derive_stage(
    app: faust.App,
    projector: Projector,
    settings: ConsumeSettings,
    hot: list[BatchLoop[Any]],
    followers_woken: asyncio.Event,
    queue_listener: ChannelListener | None,
    *,
    derive_budget_s: float,
    derive_tasks: int,
) -> None:
    """The derive tasks (``derive_tasks`` of them) and the backlog gauges."""
    queued = asyncio.Event()  # set by the listener task: another process queued keys
    if queue_listener is not None:
        _listen(app, queue_listener, queued, "the derive queue")

    async def settle_once() -> bool:
        """One derive slice; True when it found work."""
        queued.clear()
        for h in hot:  # a batch written from now on wakes the next idle wait
            h.written.clear()
        # While the apply stage is behind, derive gets a share of the process, not all.
        behind = any(h.behind for h in hot)
        budget = derive_budget_s / 4 if behind else derive_budget_s
        started = time.monotonic()
        derived = await until_transient_passes(
            "deriving",
            partial(
                projector.settle, budget, None, 0 if behind else STALE_PER_SETTLE, publish=False
            ),
            worker=settings.worker,
        )
        metrics.DERIVED.labels("person").inc(derived.persons)
        metrics.DERIVED.labels("device").inc(derived.devices)
        for kind, seconds in derived.waited_s:
            metrics.VIEW_LAG.labels(kind).observe(seconds)
        if derived.transitions:
            followers_woken.set()
        if behind:  # leave the rest of the time to the apply stage
            took = time.monotonic() - started
            await asyncio.sleep(took / BEHIND_SHARE - took)
        return bool(derived.persons or derived.devices)

    async def next_batch_or_tick() -> None:
        """Wait until the apply stage writes a batch (this process's, or another's: its
        commit notifies the queue), or ``SETTLE_EVERY_S``."""
        waits = [asyncio.ensure_future(h.written.wait()) for h in hot]
        if queue_listener is not None:
            waits.append(asyncio.ensure_future(queued.wait()))
        if not waits:
            await asyncio.sleep(SETTLE_EVERY_S)
            return
        try:
            await asyncio.wait(waits, timeout=SETTLE_EVERY_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def settle() -> None:
        """Derive what batches queued and time made stale, back to back while there is work
        (a share of the process while the apply stage is behind)."""
        while True:
            if not hot:  # no batch loop in this process: /healthz follows the derive loop
                liveness.LOOP.beat()
            try:
                busy = await settle_once()  # waits out a lost database, not-ready meanwhile
            except Exception:
                log.exception("settling failed; will retry")
                busy = False
            if not busy:
                await next_batch_or_tick()

    for _ in range(derive_tasks):  # passes claim disjoint keys (SKIP LOCKED)
        app.task(settle)

    _refresh_every(app, "the derive backlog", partial(_report, projector))


def _follow_stage(
    app: faust.App,
    projector: Projector,
    settings: ConsumeSettings,
    woken: asyncio.Event,
    *,
    alone: bool,
) -> None:
    """Publishing (transitions, the persons topic, audience changes; the audience stage
    runs with them), the aggregates stage, and the follow backlog gauge. ``alone``: the
    process runs no other stage, so ``/healthz`` follows the publishing loop (a beat per
    page)."""
    audience_flows: Counter[tuple[str, str]] = Counter()
    audience_suppressions: Counter[tuple[str, str]] = Counter()
    turned = liveness.LOOP.beat if alone else _no_beat
    _refresh_every(app, "the follow backlog", partial(_report_follow, projector))

    @app.task  # type: ignore[untyped-decorator]
    async def publish() -> None:
        """Publish the transitions derive passes left in the outbox, in a thread of their
        own (woken by a slice that found some, or by another process's persons change; at
        least every ``SETTLE_EVERY_S``)."""
        while True:
            turned()
            woken.clear()
            kinds_before = dict(projector.totals.by_kind)
            try:
                await until_transient_passes(
                    "publishing transitions", partial(projector.publish_transitions, turned),
                    worker=settings.worker,
                )  # fmt: skip
            except Exception:
                log.exception("publishing transitions failed; will retry")
            for kind, total in projector.totals.by_kind.items():
                metrics.TRANSITIONS.labels(kind).inc(total - kinds_before.get(kind, 0))
            count_audiences(projector.audiences.totals, audience_flows, audience_suppressions)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), SETTLE_EVERY_S)

    @app.task  # type: ignore[untyped-decorator]
    async def aggregates() -> None:
        """The survival aggregates and the churn model follow ``persons`` on their own
        cadence (``AGGREGATES_EVERY_S``), in their own thread and connection."""
        while True:
            try:
                await until_transient_passes(
                    "the aggregates stage", projector.refresh_aggregates, worker=settings.worker
                )
            except Exception:
                log.exception("the aggregates stage failed; will retry")
            await asyncio.sleep(AGGREGATES_EVERY_S)
