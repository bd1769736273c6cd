"""The projector's hot path: one aiokafka consumer in the group, batches in, Postgres, commit.

faust's per-message consumer path costs about 230 µs of CPU per record here, far over
the budget of a 20,000 events/s worker (``docs/design/projector-throughput.md``), so
the projector is a faust app whose work runs in this :class:`mode.Service` (started and
stopped by the faust worker) around its own :class:`aiokafka.AIOKafkaConsumer`:

- ``getmany`` batches (up to ``batch_max`` records) from the canonical topics, as a
  member of the consumer group ``group_id`` (Kafka assigns the partitions; more than
  one worker shares them);
- a batch is decoded, folded per key and encoded while the previous one is written (the
  write, Postgres only, runs in a thread);
- offsets are committed only after a batch's transaction is durable, in batch order; the
  next batch's write does not wait for the commit round trip. A record that cannot be
  applied (a value the codec or Postgres cannot hold) is isolated and dead-lettered in
  the batch's transaction, the rest applied (``Projector.write``). While the database is
  away a batch's write is retried with backoff (the worker reports not-ready); any other
  failed write stops the process (exit code 70, uncommitted records are delivered again:
  every write is a merge, so a repeat is harmless);
- before partitions are revoked, the batch in flight is finished and committed and the
  cached raw states dropped (their keys may now be another worker's; the cache is checked
  against each row's version, so this is not needed for correctness, and it is bounded in
  bytes anyway: ``TENURE_PROJECTOR_CACHE_MB``);
- memory: aiokafka buffers at most ``fetch_max_bytes`` (16 MiB) of fetched records, and at
  most two batches of ``batch_max`` records are decoded at a time (one prepared, one
  being written).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service

from streams.pipeline_metrics import WORKER_READY
from streams.projector import metrics
from tenure.projection.projector import PreparedParse, Projector
from tenure.projection.records import parse_records
from tenure.runtime import liveness
from tenure.runtime.database import DATABASE_UNAVAILABLE, Backoff

A = TypeVar("A")
R = TypeVar("R")
log = logging.getLogger(__name__)

EXIT_UNPROJECTABLE = 70
"""Exit code of a worker that could not write a batch (its supervisor restarts it)."""


@dataclass(frozen=True, slots=True)
class HotPathSettings:
    """How the hot path consumes."""

    bootstrap: str
    group_id: str
    topics: tuple[str, ...]
    batch_max: int = 5000
    poll_ms: int = 200
    session_timeout_ms: int = 6000  # group joins take ~session_timeout/2 on Tansu
    heartbeat_interval_ms: int = 1000
    max_partition_fetch_bytes: int = 4 * 1024 * 1024
    fetch_max_bytes: int = 16 * 1024 * 1024
    """The most record bytes one fetch brings (aiokafka buffers a fetch's records until
    ``getmany`` hands them out; its default is 50 MiB, more than any batch here needs)."""


def _records(fetched: dict[TopicPartition, list[Any]]) -> Iterator[Any]:
    return (m for messages in fetched.values() for m in messages)


def _offsets(fetched: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, int]:
    return {tp: messages[-1].offset + 1 for tp, messages in fetched.items() if messages}


def _oldest_timestamps(fetched: dict[TopicPartition, list[Any]]) -> list[int]:
    return [min(m.timestamp for m in messages) for messages in fetched.values() if messages]


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: ProjectorHotPath) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.service.flush()
        self.service.projector.caches.clear()
        for tp in revoked:
            metrics.CONSUMER_LAG.remove(self.service.settings.group_id, tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("projector assigned %d partitions", len(assigned))


class ProjectorHotPath(Service):
    """Consume, apply and commit; see the module doc."""

    def __init__(
        self,
        projector: Projector,
        settings: HotPathSettings,
        on_failure: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.projector = projector
        self.settings = settings
        self.on_failure = on_failure or (lambda: os._exit(EXIT_UNPROJECTABLE))
        self.consumer: AIOKafkaConsumer | None = None
        self._writing: asyncio.Task[None] | None = None
        """The write of the latest batch."""
        self._committing: asyncio.Task[None] | None = None
        """The commit of the latest batch (after its write and the previous commit)."""
        self.batches = 0
        self.behind = False
        """True while records wait to be applied (full polls, or a lag over a tenth of a
        batch): the derive stage then gets only small slices."""
        self._next_lag_report = 0.0
        self.written = asyncio.Event()
        """Set each time a batch is durable (the derive stage waits on it when idle, so
        what a batch queued is derived at once instead of at the next tick)."""

    async def on_start(self) -> None:
        """Join the group."""
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap,
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
            fetch_max_bytes=s.fetch_max_bytes,
        )
        self.consumer.subscribe(list(s.topics), listener=_Revocations(self))
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Finish the batch in flight, commit it, leave the group."""
        try:
            await self.flush()
        finally:
            if self.consumer is not None:
                await self.consumer.stop()

    async def flush(self) -> None:
        """Wait until every batch in flight is durable and its offsets committed."""
        for task in (self._writing, self._committing):
            if task is not None:
                await asyncio.shield(task)

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
            if sum(len(ms) for ms in fetched.values()) >= self.settings.batch_max:
                self.behind = True
            # Decoding, folding and encoding (CPU) overlap the previous batch's write.
            # (resolving person ids may ask the database: it waits out an outage too)
            prepared = (
                await self._when_database_answers(
                    "preparing the batch", self.projector.prepare, parse_records(_records(fetched))
                )
                if fetched
                else None
            )
            await self._written()  # the previous batch is durable (its commit may be running)
            if prepared is not None:
                writing = asyncio.create_task(self._write(prepared))
                self._committing = asyncio.create_task(
                    self._commit(fetched, prepared, writing, self._committing)
                )
                self._writing = writing
            await self._report_lag()

    async def _write(self, prepared: PreparedParse) -> None:
        await self._guarded(
            lambda: self._when_database_answers("writing the batch", self._apply, prepared)
        )
        self.written.set()

    async def _when_database_answers(self, what: str, work: Callable[[A], R], argument: A) -> R:
        """Run ``work(argument)`` in a thread; while the database is away, wait (backoff)
        and run it again.

        The worker reports not-ready meanwhile and stays in its group. A repeat is
        harmless: resolving person ids only reads, and a batch appends deltas whose join
        absorbs a repeat.
        """
        waits = Backoff()
        while True:
            try:
                result = await asyncio.to_thread(work, argument)
            except DATABASE_UNAVAILABLE as exc:
                if self.should_stop:
                    raise
                WORKER_READY.labels("projector").set(0)
                delay = waits.next_delay()
                log.warning("database unavailable (%s); %s again in %.1f s", exc, what, delay)
                liveness.LOOP.beat()  # waiting out a database blip is not a stuck loop
                await asyncio.sleep(delay)
                continue
            if waits.failures:
                log.warning("the database is back; projecting again")
            WORKER_READY.labels("projector").set(1)
            return result

    async def _commit(
        self,
        fetched: dict[TopicPartition, list[Any]],
        prepared: PreparedParse,
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
            # The group moved on (rebalance): the next owner reads these records again.
            log.warning("offsets not committed (%s); records will be delivered again", exc)
        now_ms = time.time() * 1000
        for ts in _oldest_timestamps(fetched):
            metrics.INGEST_LATENCY.observe(max(0.0, (now_ms - ts) / 1000))
        # Counted once durable and committed (the benchmark reads these).
        metrics.RECORDS.labels("applied").inc(prepared.applied)
        metrics.RECORDS.labels("dead_lettered").inc(prepared.dead_lettered)
        self.batches += 1

    def _apply(self, prepared: PreparedParse) -> None:
        parsed = prepared.parsed
        started = time.perf_counter()
        self.projector.write(prepared)
        took = time.perf_counter() - started
        metrics.APPLY_SECONDS.observe(took)
        metrics.SINK_WRITE_SECONDS.observe(self.projector.last_write_s)
        metrics.BATCH_RECORDS.observe(parsed.size)
        now = datetime.now(UTC)
        for latest in parsed.progress.values():  # per partition: its newest event
            metrics.PROCESSING_LAG.observe(max(0.0, (now - latest).total_seconds()))

    async def _guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            log.exception("a batch could not be projected; stopping so it is redelivered")
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
                metrics.CONSUMER_LAG.labels(
                    self.settings.group_id, tp.topic, str(tp.partition)
                ).set(lag)
        self.behind = total > self.settings.batch_max // 10


__all__ = ["EXIT_UNPROJECTABLE", "HotPathSettings", "ProjectorHotPath"]
