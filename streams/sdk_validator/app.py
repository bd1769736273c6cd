"""The SDK validator: validates events SDK clients wrote to Kafka directly.

Valid events go to their canonical topic (keyed as the ingest service keys them); every
other record is dead-lettered with the reason: invalid events, records the validator
cannot read or re-encode (an error while routing it), and records the broker refuses on
their own (e.g. over its size limit). Dead letters go to the dead-letter topic and to the
``dead_letters`` table.

It consumes with the loop every worker shares (:class:`tenure.eventlog.batch_loop.BatchLoop`,
consumer group ``tenure-sdk-validator``) and produces with the one producer
(:class:`tenure.eventlog.publisher.EventPublisher`); :class:`SdkValidation` is its handler.
A batch's forwarded records and dead letters are acknowledged (and its vault rows written)
before its offsets are committed, so nothing is lost in between; a transient failure
(broker or database away) is retried, never dead-lettered. faust runs the process
(:mod:`streams.faust_app`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import faust
from psycopg_pool import ConnectionPool

from streams.faust_app import consume_with, tenure_faust_app
from streams.sdk_validator import metrics
from streams.sdk_validator.routing import route_sdk_record
from tenure.contract.topics import SDK_EVENTS
from tenure.eventlog.batch_loop import BatchHandler, ConsumeSettings
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import Poisoned, isolate, poison_category
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.privacy.boundary import VaultConnection, tokenised

APP_ID = "tenure-sdk-validator-runtime"
"""The faust app's id. Not a consumer group: faust subscribes to nothing."""
GROUP_ID = "tenure-sdk-validator"
"""The consumer group of the SDK topic (the group the validator has always committed in)."""
STAGE = "sdk-validator"
BATCH_MAX = 500
"""Records per batch at most."""

log = logging.getLogger(__name__)


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


@dataclass(slots=True)
class SdkBatch:
    """A batch routed: records to forward, dead letters, vault rows to register."""

    forward: list[tuple[Any, OutgoingRecord]]
    """Each record to forward with the SDK record it came from."""
    invalid: list[DeadLetter]
    """Records rejected while routing."""
    registry: dict[str, str]
    """Vault rows (token -> person id) the forwarded records need."""
    forwarded: int = 0
    """Records forwarded and acknowledged (set by the write)."""
    dead: list[DeadLetter] = field(default_factory=list)
    """Every dead letter of the batch (set by the write)."""


class SdkValidation(BatchHandler[SdkBatch]):
    """The SDK validator's batch handler: route, forward, park."""

    def __init__(
        self,
        future_tolerance: timedelta,
        *,
        pool: ConnectionPool,
        vault: VaultConnection,
        publisher: EventPublisher,
        dead_letters: DeadLetterSink,
    ) -> None:
        self.future_tolerance = future_tolerance
        self.pool = pool
        self.vault = vault
        self.publisher = publisher
        self.dead_letters = dead_letters

    def prepare(self, records: Sequence[Any]) -> SdkBatch:
        """Validate and tokenise each record (reads the vault's secret once)."""
        now = datetime.now(UTC)
        registry: dict[str, str] = {}
        tokenise = partial(_tokenise, partial(tokenised, self.vault.pseudonymiser()), registry)
        batch = SdkBatch([], [], registry)
        for msg in records:
            routed = _route(msg, now, self.future_tolerance, tokenise)
            if isinstance(routed, DeadLetter):
                batch.invalid.append(routed)
            else:
                batch.forward.append((msg, routed))
        return batch

    def write(self, prepared: SdkBatch) -> None:
        """Register the vault rows, forward (a record the broker refuses on its own is
        isolated and dead-lettered) and park the dead letters; return once all is
        acknowledged."""
        self.vault.register(prepared.registry)  # before the tokenised records are sent
        refused = isolate(
            prepared.forward, lambda part: self.publisher.publish([r for _, r in part])
        )
        prepared.dead = prepared.invalid + [_letter(p.item[0], p) for p in refused]
        prepared.forwarded = len(prepared.forward) - len(refused)
        self.dead_letters.park(self.pool, prepared.dead)

    def committed(self, records: Sequence[Any], prepared: SdkBatch) -> None:
        """Count the batch by outcome."""
        metrics.SDK_RECORDS.labels("forwarded", "").inc(prepared.forwarded)
        for d in prepared.dead:
            metrics.SDK_RECORDS.labels("dead_lettered", d.category).inc()


def create_app(
    bootstrap: str,
    datadir: Path,
    future_tolerance: timedelta,
    *,
    pool: ConnectionPool,
    vault: VaultConnection,
    publisher: EventPublisher,
    dead_letters: DeadLetterSink,
) -> faust.App:
    """Build the faust application (the SDK topic's batch loop) for the given broker.

    ``pool`` is where dead letters are recorded, ``dead_letters`` parks them,
    ``publisher`` forwards valid events, and ``vault`` is where forwarded events'
    person-id tokens are registered before they are sent. The process is wired by
    :mod:`tenure.entrypoints.sdk_validator`.
    """
    app = tenure_faust_app(APP_ID, bootstrap, datadir)
    handler = SdkValidation(
        future_tolerance, pool=pool, vault=vault, publisher=publisher, dead_letters=dead_letters
    )
    settings = ConsumeSettings(bootstrap, GROUP_ID, (SDK_EVENTS,), STAGE, batch_max=BATCH_MAX)
    consume_with(app, handler, settings)
    return app
