"""The SDK validator: a faust agent that validates events SDK clients wrote to Kafka directly.

Valid events go to their canonical topic (keyed as the ingest service keys them); every
other record is dead-lettered with the reason: invalid events, records the validator
cannot read or re-encode (an error while routing it), and records the broker refuses on
their own (e.g. over its size limit). Dead letters go to the dead-letter topic and, when
``TENURE_DATABASE_URL`` is set, to the ``dead_letters`` table. Sends and dead letters are
acknowledged before faust commits the batch's offsets, so nothing is lost in between; a
transient failure (broker or database away) is retried, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
from psycopg_pool import ConnectionPool

from streams.faust_app import tenure_faust_app
from streams.pipeline_metrics import CONSUMER_LAG
from streams.sdk_validator import metrics
from streams.sdk_validator.routing import route_sdk_record
from tenure.contract.topics import SDK_EVENTS
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import Poisoned, poison_category
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord

APP_ID = "tenure-sdk-validator"
STAGE = "sdk-validator"
RETRY_MAX_S = 5.0
"""Longest wait between two attempts to park dead letters while the broker or database
is away."""

log = logging.getLogger(__name__)


def _letter(msg: Any, failure: Poisoned[Any]) -> DeadLetter:
    return DeadLetter(
        msg.key, msg.value or b"", failure.category, failure.reason, "",
        f"{msg.topic}/{msg.partition}/{msg.offset}",
    )  # fmt: skip


def _route(msg: Any, now: datetime, future_tolerance: timedelta) -> OutgoingRecord | DeadLetter:
    """Route one record; an error about the record itself makes it a dead letter."""
    try:
        return route_sdk_record(
            msg.key,
            msg.value,
            origin=f"{msg.topic}/{msg.partition}/{msg.offset}",
            now=now,
            future_tolerance=future_tolerance,
            headers=msg.headers,
        )
    except Exception as exc:
        category = poison_category(exc)
        if category is None:
            raise
        return _letter(msg, Poisoned(msg, exc, category))


async def _park(
    sink: DeadLetterSink, pool: ConnectionPool | None, dead: Sequence[DeadLetter]
) -> None:
    """Park dead letters (topic, table, counter), retrying while that fails transiently."""
    wait = 0.2
    while True:
        try:
            await asyncio.to_thread(sink.park, pool, dead)
            return
        except Exception as exc:
            if poison_category(exc) is not None:
                raise
            log.warning("dead letters not parked yet (%s); retrying", type(exc).__name__)
            await asyncio.sleep(wait)
            wait = min(RETRY_MAX_S, wait * 2)


def create_app(
    bootstrap: str,
    datadir: Path,
    future_tolerance: timedelta,
    database_url: str | None = None,
) -> faust.App:
    """Build the faust application (one agent) for the given broker.

    ``database_url`` (default: ``TENURE_DATABASE_URL``) is where dead letters are recorded.
    """
    from tenure.config import TenureConfig

    app = tenure_faust_app(APP_ID, bootstrap, datadir)
    source = app.topic(SDK_EVENTS, key_serializer="raw", value_serializer="raw")
    sinks: dict[str, Any] = {}
    url = database_url or TenureConfig.from_env().database_url
    pool = ConnectionPool(url, min_size=0, max_size=1, open=False) if url else None
    dead_letters = DeadLetterSink(STAGE, EventPublisher(bootstrap))

    async def forward(routed: OutgoingRecord) -> Any:
        sink = sinks.get(routed.topic)
        if sink is None:
            sink = sinks[routed.topic] = app.topic(routed.topic)
        return await sink.send(
            key=routed.key.encode(),
            value=routed.value,
            headers=list(routed.headers),
            key_serializer="raw",
            value_serializer="raw",
            force=True,
        )

    @app.agent(source)
    async def validate_sdk_events(stream: Any) -> Any:
        if pool is not None:
            pool.open()
        async for events in stream.take_events(500, within=0.2):
            now = datetime.now(UTC)
            sent: list[tuple[Any, Any]] = []
            dead: list[DeadLetter] = []
            for event in events:
                msg = event.message
                routed = _route(msg, now, future_tolerance)
                if isinstance(routed, DeadLetter):
                    dead.append(routed)
                    continue
                try:
                    sent.append((msg, await forward(routed)))
                except Exception as exc:  # refused before sending: about this record?
                    category = poison_category(exc)
                    if category is None:
                        raise
                    dead.append(_letter(msg, Poisoned(msg, exc, category)))
            acks = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            forwarded = 0
            for (msg, _), ack in zip(sent, acks, strict=True):
                if isinstance(ack, BaseException):
                    category = poison_category(ack)
                    if category is None:
                        raise ack  # transient: the batch is not committed, so re-read
                    dead.append(_letter(msg, Poisoned(msg, ack, category)))
                else:
                    forwarded += 1
            await _park(dead_letters, pool, dead)  # acknowledged before offsets commit
            metrics.SDK_RECORDS.labels("forwarded", "").inc(forwarded)
            for d in dead:
                metrics.SDK_RECORDS.labels("dead_lettered", d.category).inc()
            yield len(events)

    @app.timer(2.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        """Lag of this worker's partitions: fetch high watermark minus position."""
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != SDK_EVENTS:
                continue
            high = consumer.highwater(tp)
            position = await consumer.position(tp)
            if high is None or position is None:
                continue
            CONSUMER_LAG.labels(APP_ID, tp.topic, str(tp.partition)).set(max(0, high - position))

    return app
