"""Dead letters: records that cannot be applied, parked with the reason.

A dead letter goes to the dead-letter topic (original value, reason in headers), to the
``dead_letters`` table (listed and re-driven by ``tenure deadletters``) and is counted in
``tenure_dead_letters_total{worker, category}`` (the stage and a bounded reason class;
never an id). :class:`DeadLetterSink` does the three for one stage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import Counter
from psycopg_pool import ConnectionPool

from tenure.contract.topics import DEAD_LETTERS, REASON_HEADER
from tenure.eventlog.isolation import isolate
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.storage import dead_letters
from tenure.storage.dead_letters import StoredDeadLetter

log = logging.getLogger(__name__)

CATEGORY_HEADER = "tenure-reason-category"
FIELD_HEADER = "tenure-reason-field"
ORIGIN_HEADER = "tenure-origin"
"""Header naming where the record came from: ``topic/partition/offset`` (or
``archive/SEQ`` for a record read back from the archive)."""
STAGE_HEADER = "tenure-stage"
"""Header naming the stage that dead-lettered the record."""

DEAD_LETTER_COUNT = Counter(
    "tenure_dead_letters",
    "Records dead-lettered, by worker or stage (archiver | sdk-validator | projector | derive "
    "| outbox | replay | catch-up) and reason category.",
    ["worker", "category"],
)


VALUE_OMITTED_HEADER = "tenure-value-omitted"
"""Header of a dead letter published without its value (the broker refused the whole
record); the ``dead_letters`` table holds the value."""
MAX_REASON_BYTES = 1000


def _without_value(record: OutgoingRecord) -> OutgoingRecord:
    headers = tuple(h for h in record.headers if h[0] != REASON_HEADER)
    return OutgoingRecord(
        record.topic,
        record.key[:200],
        b"",
        (*headers, (VALUE_OMITTED_HEADER, b"too large for the topic; see the dead_letters table")),
    )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be applied and why."""

    key: bytes | None
    value: bytes
    category: str
    reason: str
    field: str
    origin: str
    archive_seq: int | None = None

    def to_record(self, stage: str = "") -> OutgoingRecord:
        """The record to publish on the dead-letter topic (original value, reason in headers)."""
        headers = [
            (REASON_HEADER, self.reason.encode(errors="replace")[:MAX_REASON_BYTES]),
            (CATEGORY_HEADER, self.category.encode()),
            (FIELD_HEADER, self.field.encode()),
            (ORIGIN_HEADER, self.origin.encode()),
        ]
        if stage:
            headers.append((STAGE_HEADER, stage.encode()))
        return OutgoingRecord(
            topic=DEAD_LETTERS,
            key=(self.key or b"").decode(errors="replace"),
            value=self.value,
            headers=tuple(headers),
        )

    def stored(self, stage: str) -> StoredDeadLetter:
        """The ``dead_letters`` row of this letter for ``stage``."""
        topic: str | None = None
        partition = offset = None
        parts = self.origin.rsplit("/", 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            topic, partition, offset = parts[0], int(parts[1]), int(parts[2])
        return StoredDeadLetter(
            stage, self.category, self.reason, self.field, self.origin, self.value, self.key,
            topic, partition, offset, self.archive_seq,
        )  # fmt: skip


class DeadLetterSink:
    """Where one stage parks its dead letters: the topic (when it has a publisher), the
    table and the counter.

    Stages with a Postgres transaction per batch call :meth:`publish` before it and
    :meth:`store` inside it, then :meth:`count` once it committed; others call :meth:`park`.
    """

    def __init__(self, stage: str, publisher: EventPublisher | None = None) -> None:
        self.stage = stage
        self.publisher = publisher
        self.parked = 0
        """Dead letters this sink counted."""

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Publish to the dead-letter topic and wait for the acknowledgement (raises
        ``PublishFailed``, a transient error, if the broker did not acknowledge).

        A letter the broker refuses on its own (its record was dead-lettered for being too
        large, say) is published without its value, with the header
        ``tenure-value-omitted``; the ``dead_letters`` table keeps the whole record.
        """
        if not letters or self.publisher is None:
            return
        records = [d.to_record(self.stage) for d in letters]
        refused = isolate(records, self.publisher.publish)
        if refused:
            self.publisher.publish([_without_value(p.item) for p in refused])

    def store(self, conn: psycopg.Connection[Any], letters: Sequence[DeadLetter]) -> None:
        """Record the letters in ``dead_letters`` (in the caller's transaction)."""
        if letters:
            dead_letters.record(conn, [d.stored(self.stage) for d in letters])

    def count(self, letters: Sequence[DeadLetter]) -> None:
        """Count letters once they are durable (topic and table)."""
        for d in letters:
            DEAD_LETTER_COUNT.labels(self.stage, d.category).inc()
            log.warning("%s dead-lettered a record from %s: %s", self.stage, d.origin, d.category)
            log.debug("dead letter reason: %s", d.reason)
        self.parked += len(letters)

    def park(self, pool: ConnectionPool | None, letters: Sequence[DeadLetter]) -> None:
        """Publish, store (own transaction; not without a ``pool``) and count."""
        if not letters:
            return
        self.publish(letters)
        if pool is not None:
            with pool.connection() as conn, conn.transaction():
                self.store(conn, letters)
        self.count(letters)


__all__ = [
    "CATEGORY_HEADER",
    "DEAD_LETTER_COUNT",
    "FIELD_HEADER",
    "ORIGIN_HEADER",
    "STAGE_HEADER",
    "VALUE_OMITTED_HEADER",
    "DeadLetter",
    "DeadLetterSink",
]
