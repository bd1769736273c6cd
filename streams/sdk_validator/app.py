"""The SDK validator: a faust agent that validates events SDK clients wrote to Kafka directly.

Valid events go to their canonical topic (keyed as the ingest service keys them), invalid
ones to the dead-letter topic with the reason in headers. Sends are awaited until the broker
acknowledges them before faust commits the batch's offsets, so nothing is lost in between.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import faust

from streams.faust_app import tenure_faust_app
from streams.pipeline_metrics import CONSUMER_LAG, DEAD_LETTERS
from streams.sdk_validator import metrics
from streams.sdk_validator.routing import route_sdk_record
from tenure.contract.topics import SDK_EVENTS
from tenure.eventlog.deadletter import DeadLetter
from tenure.privacy.boundary import VaultConnection, tokenised

APP_ID = "tenure-sdk-validator"


def _tokenise(
    tokenise: Any, registry: dict[str, str], envelope: dict[str, Any], key: str
) -> tuple[dict[str, Any], str]:
    result: tuple[dict[str, Any], str] = tokenise(envelope, key, registry)
    return result


def create_app(
    bootstrap: str, datadir: Path, future_tolerance: timedelta, database_url: str
) -> faust.App:
    """Build the faust application (one agent) for the given broker; forwarded events
    carry tokens for person ids, registered in the database's vault first."""
    app = tenure_faust_app(APP_ID, bootstrap, datadir)
    vault = VaultConnection(database_url)
    source = app.topic(SDK_EVENTS, key_serializer="raw", value_serializer="raw")
    sinks: dict[str, Any] = {}

    @app.agent(source)
    async def validate_sdk_events(stream: Any) -> Any:
        async for events in stream.take_events(500, within=0.2):
            now = datetime.now(UTC)
            pending = []
            registry: dict[str, str] = {}
            tokenise = partial(tokenised, await asyncio.to_thread(vault.pseudonymiser))
            routed_all = [
                route_sdk_record(
                    event.message.key,
                    event.message.value,
                    origin=f"{event.message.topic}/{event.message.partition}/"
                    f"{event.message.offset}",
                    now=now,
                    future_tolerance=future_tolerance,
                    tokenise=partial(_tokenise, tokenise, registry),
                )
                for event in events
            ]
            await asyncio.to_thread(vault.register, registry)  # before anything is sent
            for routed in routed_all:
                if isinstance(routed, DeadLetter):
                    metrics.SDK_RECORDS.labels("dead_lettered", routed.category).inc()
                    DEAD_LETTERS.labels("sdk-validator", routed.category).inc()
                    routed_record = routed.to_record()
                else:
                    metrics.SDK_RECORDS.labels("forwarded", "").inc()
                    routed_record = routed
                sink = sinks.get(routed_record.topic)
                if sink is None:
                    sink = sinks[routed_record.topic] = app.topic(routed_record.topic)
                sent = await sink.send(
                    key=routed_record.key.encode(),
                    value=routed_record.value,
                    headers=list(routed_record.headers),
                    key_serializer="raw",
                    value_serializer="raw",
                    force=True,
                )
                pending.append(sent)
            await asyncio.gather(*pending)  # acknowledged before the offsets are committed
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
