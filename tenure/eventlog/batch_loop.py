"""The one way a Tenure worker consumes Kafka: batches in, durable, offsets committed.

Every stream worker (archiver, projector, SDK validator) runs a :class:`BatchLoop` around
its own :class:`BatchHandler`. The loop is the projector's hot path made general (it
proved fastest here: faust's per-message path costs ~230 µs of CPU per record,
``docs/design/projector-throughput.md``); a handler only says what a batch becomes:

- :meth:`BatchHandler.prepare` turns the records into the handler's batch (decode, route,
  fold: CPU, in a thread; it may read the database);
- :meth:`BatchHandler.write` makes that batch durable and returns when it is (rows
  committed, records forwarded and acknowledged, dead letters parked: a record that
  cannot be processed is isolated with :func:`tenure.eventlog.isolation.isolate` and
  dead-lettered there, the rest processed);
- :meth:`BatchHandler.committed` counts a batch once its offsets are committed.

What the loop guarantees, for every handler:

- one :class:`aiokafka.AIOKafkaConsumer` in the consumer group, ``getmany`` batches of up
  to ``batch_max`` records (Kafka assigns the partitions; more than one worker shares
  them);
- a batch is prepared while the previous one is written (the write runs in a thread), and
  writes run one at a time, in batch order;
- offsets are committed only after a batch is durable, in batch order; the next batch's
  write does not wait for the commit round trip. A failed commit (the group moved on) only
  means the records are delivered again: every handler's write absorbs a repeat (unique
  keys, merges), and only a committed batch is counted (:meth:`BatchHandler.committed`),
  so each record is counted once, by the delivery whose offsets were committed
  (``tenure_consumer_batches_delivered_again`` counts the others);
- a transient failure (:attr:`BatchHandler.transient`: the database away, a conflict, a
  broker that did not acknowledge) is waited out with backoff and the same step run again
  (:func:`tenure.eventlog.transient.until_transient_passes`, the one waiting policy of the
  workers); the worker reports not-ready (``tenure_worker_ready``) meanwhile and stays in
  its group.
  Any other failure calls ``on_failure`` (by default the process exits with
  :data:`EXIT_UNPROCESSABLE` and its supervisor restarts it; uncommitted records are
  delivered again);
- before partitions are revoked, the batch in flight is finished and committed, then
  :meth:`BatchHandler.revoked` runs;
- the loop beats :data:`tenure.runtime.liveness.LOOP` on every turn and every backoff
  wait (``/healthz``), and reports lag from fetch high watermarks (``tenure_consumer_lag``;
  not ``end_offsets``, wrong on the embedded broker);
- memory: aiokafka buffers at most ``fetch_max_bytes`` of fetched records, and at most two
  batches are prepared at a time (one prepared, one being written).

The loop is a :class:`mode.Service`: a faust worker starts and stops it with the app
(``streams.faust_app.consume_with``), and :func:`run_until` runs it without one (tests,
benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service
from prometheus_client import REGISTRY, Counter, Gauge

from tenure.eventlog.transient import TRANSIENT, WORKER_READY, ready, until_transient_passes
from tenure.runtime import liveness

P = TypeVar("P")
A = TypeVar("A")
R = TypeVar("R")
log = logging.getLogger(__name__)

EXIT_UNPROCESSABLE = 70
"""Exit code of a worker that could not write a batch (its supervisor restarts it)."""


def _consumer_lag() -> Gauge:
    """``tenure_consumer_lag``; reused if it was registered first elsewhere."""
    existing = getattr(REGISTRY, "_names_to_collectors", {}).get("tenure_consumer_lag")
    if isinstance(existing, Gauge):
        return existing
    return Gauge(
        "tenure_consumer_lag",
        "Records behind the fetch high watermark, per consumer group, topic and partition.",
        ["group", "topic", "partition"],
    )


CONSUMER_LAG = _consumer_lag()

BATCHES_DELIVERED_AGAIN = Counter(
    "tenure_consumer_batches_delivered_again",
    "Batches written whose offsets could not be committed (the group had moved on): the"
    " partitions' next owner reads and counts their records again; these batches are not"
    " counted by the worker that wrote them.",
    ["group"],
)


@dataclass(frozen=True, slots=True)
class ConsumeSettings:
    """Where and how a worker consumes."""

    bootstrap: str
    group_id: str
    topics: tuple[str, ...]
    worker: str
    """The worker's name in ``tenure_worker_ready`` and in logs."""
    batch_max: int = 5000
    poll_ms: int = 200
    session_timeout_ms: int = 6000  # group joins take ~session_timeout/2 on Tansu
    heartbeat_interval_ms: int = 1000
    max_partition_fetch_bytes: int = 4 * 1024 * 1024
    fetch_max_bytes: int = 16 * 1024 * 1024
    """The most record bytes one fetch brings (aiokafka buffers a fetch's records until
    ``getmany`` hands them out; its default is 50 MiB, more than any batch here needs)."""


class BatchHandler(ABC, Generic[P]):
    """What a worker does with a batch of records; :class:`BatchLoop` does the rest.

    ``prepare`` and ``write`` run in a thread and may be run again for the same records
    (after a transient failure, or when the records are delivered again): they must be
    repeatable.
    """

    transient: ClassVar[tuple[type[BaseException], ...]] = TRANSIENT
    """Failures the loop waits out and retries (see :data:`TRANSIENT`)."""

    @abstractmethod
    def prepare(self, records: Sequence[Any]) -> P:
        """The batch that ``records`` (aiokafka ``ConsumerRecord``\\ s, in partition order)
        become: decoded, validated, folded; no durable effect."""

    @abstractmethod
    def write(self, prepared: P) -> None:
        """Make the batch durable; return when it is (every record processed or parked as
        a dead letter)."""

    def committed(self, records: Sequence[Any], prepared: P) -> None:
        """The batch is durable and its offsets are committed: count it."""

    def revoked(self) -> None:
        """Partitions were revoked (the batch in flight is durable and committed)."""


def _offsets(fetched: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, int]:
    return {tp: messages[-1].offset + 1 for tp, messages in fetched.items() if messages}


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: BatchLoop[Any]) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.loop.flush()
        self.loop.handler.revoked()
        for tp in revoked:
            CONSUMER_LAG.remove(self.loop.settings.group_id, tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("%s assigned %d partitions", self.loop.settings.worker, len(assigned))


def _exit_unprocessable() -> None:
    os._exit(EXIT_UNPROCESSABLE)


class BatchLoop(Service, Generic[P]):
    """Consume, prepare, write, commit; see the module doc."""

    def __init__(
        self,
        handler: BatchHandler[P],
        settings: ConsumeSettings,
        on_failure: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.handler = handler
        self.settings = settings
        self.on_failure = on_failure or _exit_unprocessable
        self.consumer: AIOKafkaConsumer | None = None
        self._writing: asyncio.Task[None] | None = None
        """The write of the latest batch."""
        self._committing: asyncio.Task[None] | None = None
        """The commit of the latest batch (after its write and the previous commit)."""
        self.batches = 0
        """Batches durable and committed."""
        self.behind = False
        """True while records wait to be processed (full polls, or a lag over a tenth of a
        batch)."""
        self._next_lag_report = 0.0
        self.written = asyncio.Event()
        """Set each time a batch is durable."""

    async def on_start(self) -> None:
        """Join the group."""
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap,
            group_id=s.group_id,
            client_id=f"{s.group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
            fetch_max_bytes=s.fetch_max_bytes,
        )
        self.consumer.subscribe(list(s.topics), listener=_Revocations(self))
        ready(s.worker)
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Finish the batch in flight, commit it, leave the group."""
        try:
            await self.flush()
        finally:
            if self.consumer is not None:
                await self.consumer.stop()

    async def flush(self) -> None:
        """Wait until every batch in flight is durable and its offsets committed (raises a
        failed batch's error)."""
        tasks = [t for t in (self._writing, self._committing) if t is not None]
        done = await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        for outcome in done:  # each task's error retrieved, the first raised
            if isinstance(outcome, BaseException):
                raise outcome

    async def _written(self) -> None:
        """Wait until the latest batch is durable (its commit may still be in flight)."""
        if self._writing is not None:
            await asyncio.shield(self._writing)

    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            liveness.LOOP.beat()
            fetched = await self.consumer.getmany(
                timeout_ms=self.settings.poll_ms, max_records=self.settings.batch_max
            )
            fetched = {tp: ms for tp, ms in fetched.items() if ms}
            records = [m for ms in fetched.values() for m in ms]
            if len(records) >= self.settings.batch_max:
                self.behind = True
            # Preparing (CPU) overlaps the previous batch's write.
            prepared: list[P] = []
            if records:
                preparing = self._when_transient_passes(
                    "preparing the batch", self.handler.prepare, records
                )
                prepared.append(await self._guarded(preparing))
            await self._written()  # the previous batch is durable (its commit may be running)
            if prepared:
                writing = asyncio.create_task(self._write(prepared[0]))
                self._committing = asyncio.create_task(
                    self._commit(fetched, records, prepared[0], writing, self._committing)
                )
                self._writing = writing
            await self._report_lag()

    async def _write(self, prepared: P) -> None:
        await self._guarded(
            self._when_transient_passes("writing the batch", self.handler.write, prepared)
        )
        self.written.set()

    async def _when_transient_passes(self, what: str, work: Callable[[A], R], argument: A) -> R:
        """Run ``work(argument)`` in a thread, waiting out the handler's
        :attr:`~BatchHandler.transient` failures (the one waiting policy,
        :func:`tenure.eventlog.transient.until_transient_passes`; the loop's heartbeat beats
        meanwhile)."""
        return await until_transient_passes(
            what,
            partial(work, argument),
            worker=self.settings.worker,
            transient=self.handler.transient,
            heartbeat=liveness.LOOP,
            stopping=lambda: self.should_stop,
        )

    async def _commit(
        self,
        fetched: dict[TopicPartition, list[Any]],
        records: list[Any],
        prepared: P,
        writing: asyncio.Task[None],
        previous: asyncio.Task[None] | None,
    ) -> None:
        """Commit a batch's offsets once it is durable and the previous batch committed."""
        await writing
        if previous is not None:
            await previous
        assert self.consumer is not None
        try:
            await self.consumer.commit(_offsets(fetched))
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved on (rebalance): the next owner reads these records again and
            # counts them; counting them here too would count them twice.
            log.warning("offsets not committed (%s); records will be delivered again", exc)
            BATCHES_DELIVERED_AGAIN.labels(self.settings.group_id).inc()
            return
        self.batches += 1
        self.handler.committed(records, prepared)

    async def _guarded(self, work: Awaitable[R]) -> R:
        try:
            return await work
        except Exception:
            if not self.should_stop:
                log.exception(
                    "%s: a batch could not be processed; stopping so it is delivered again",
                    self.settings.worker,
                )
                self.on_failure()
            raise

    async def _report_lag(self) -> None:
        consumer = self.consumer
        if consumer is None or time.monotonic() < self._next_lag_report:
            return
        self._next_lag_report = time.monotonic() + 0.5
        total = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                lag = max(0, high - await consumer.position(tp))
                total += lag
                CONSUMER_LAG.labels(self.settings.group_id, tp.topic, str(tp.partition)).set(lag)
        self.behind = total > self.settings.batch_max // 10


async def _run(services: Sequence[Service], stop: threading.Event) -> None:
    for service in services:
        await service.start()
    try:
        while not stop.is_set() and not any(s.should_stop for s in services):
            await asyncio.sleep(0.1)
    finally:
        for service in reversed(services):
            await service.stop()


def run_until(stop: threading.Event, *services: Service) -> None:
    """Run ``services`` (a :class:`BatchLoop` and its companions) on a new event loop in
    this thread until ``stop`` is set or one of them stops; then stop them (the loop
    finishes and commits its batch in flight)."""
    asyncio.run(_run(services, stop))


__all__ = [
    "CONSUMER_LAG",
    "EXIT_UNPROCESSABLE",
    "TRANSIENT",
    "WORKER_READY",
    "BatchHandler",
    "BatchLoop",
    "ConsumeSettings",
    "run_until",
]
