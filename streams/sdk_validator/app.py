"""The SDK validator: a faust agent that validates events SDK clients wrote to Kafka directly.

Valid events go to their canonical topic (keyed as the ingest service keys them); every
other record is dead-lettered with the reason: invalid events, records the validator
cannot read or re-encode (an error while routing it), and records the broker refuses on
their own (e.g. over its size limit). Dead letters go to the dead-letter topic and to the
``dead_letters`` table. Sends and dead letters are
acknowledged before faust commits the batch's offsets, so nothing is lost in between; a
transient failure (broker or database away) is retried, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import faust
from psycopg_pool import ConnectionPool

from streams.faust_app import tenure_faust_app
from streams.pipeline_metrics import CONSUMER_LAG
from streams.sdk_validator import metrics
from streams.sdk_validator.routing import route_sdk_record
from tenure.contract.topics import SDK_EVENTS
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import Poisoned, poison_category
from tenure.eventlog.publisher import OutgoingRecord
from tenure.privacy.boundary import VaultConnection, tokenised

APP_ID = "tenure-sdk-validator"
STAGE = "sdk-validator"
RETRY_MAX_S = 5.0
"""Longest wait between two attempts to park dead letters while the broker or database
is away."""

log = logging.getLogger(__name__)
T = TypeVar("T")


def _letter(msg: Any, failure: Poisoned[Any]) -> DeadLetter:
    return DeadLetter(
        msg.key, msg.value or b"", failure.category, failure.reason, "",
        f"{msg.topic}/{msg.partition}/{msg.offset}",
    )  # fmt: skip


Tokenise = Callable[[dict[str, Any], str], tuple[dict[str, Any], str]]


def _route(
    msg: Any, now: datetime, future_tolerance: timedelta, tokenise: Tokenise
) -> OutgoingRecord | DeadLetter:
    """Route one record; an error about the record itself makes it a dead letter."""
    try:
        return route_sdk_record(
            msg.key,
            msg.value,
            origin=f"{msg.topic}/{msg.partition}/{msg.offset}",
            now=now,
            future_tolerance=future_tolerance,
            headers=msg.headers,
            tokenise=tokenise,
        )
    except Exception as exc:
        category = poison_category(exc)
        if category is None:
            raise
        return _letter(msg, Poisoned(msg, exc, category))


def _tokenise(
    tokenise: Any, registry: dict[str, str], envelope: dict[str, Any], key: str
) -> tuple[dict[str, Any], str]:
    result: tuple[dict[str, Any], str] = tokenise(envelope, key, registry)
    return result


async def _retrying(what: str, work: Callable[[], T]) -> T:
    """Run blocking ``work`` in a thread, retrying while it fails transiently (broker or
    database away); an error about the data itself propagates."""
    wait = 0.2
    while True:
        try:
            return await asyncio.to_thread(work)
        except Exception as exc:
            if poison_category(exc) is not None:
                raise
            log.warning("%s not done yet (%s); retrying", what, type(exc).__name__)
            await asyncio.sleep(wait)
            wait = min(RETRY_MAX_S, wait * 2)


async def _park(sink: DeadLetterSink, pool: ConnectionPool, dead: Sequence[DeadLetter]) -> None:
    """Park dead letters (topic, table, counter), retrying while that fails transiently."""
    await _retrying("dead letters parked", lambda: sink.park(pool, dead))


def create_app(
    bootstrap: str,
    datadir: Path,
    future_tolerance: timedelta,
    *,
    pool: ConnectionPool,
    vault: VaultConnection,
    dead_letters: DeadLetterSink,
) -> faust.App:
    """Build the faust application (one agent) for the given broker.

    ``pool`` (opened when the agent starts) is where dead letters are recorded,
    ``dead_letters`` parks them, and ``vault`` is where forwarded events' person-id tokens
    are registered before they are sent. The process is wired by
    :mod:`tenure.entrypoints.sdk_validator`.
    """
    app = tenure_faust_app(APP_ID, bootstrap, datadir)
    source = app.topic(SDK_EVENTS, key_serializer="raw", value_serializer="raw")
    sinks: dict[str, Any] = {}

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
        pool.open()
        async for events in stream.take_events(500, within=0.2):
            now = datetime.now(UTC)
            sent: list[tuple[Any, Any]] = []
            dead: list[DeadLetter] = []
            registry: dict[str, str] = {}
            pseudonymiser = await _retrying("vault secret read", vault.pseudonymiser)
            tokenise = partial(_tokenise, partial(tokenised, pseudonymiser), registry)
            routed_all = [(e.message, _route(e.message, now, future_tolerance, tokenise))
                          for e in events]  # fmt: skip
            await _retrying("vault rows registered", partial(vault.register, registry))
            for msg, routed in routed_all:
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
