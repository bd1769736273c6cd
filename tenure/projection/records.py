"""The projector's input: Kafka records of the canonical topics decoded into domain events.

:func:`parse_records` turns a fetched batch into a :class:`ParsedBatch`: its events (with
the record each came from), the latest event time and the next offset per partition, and a
dead letter for every record that is not an event. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import orjson

from tenure.domain.events import DomainEvent, later, parse_event
from tenure.eventlog.deadletter import DeadLetter
from tenure.projection.apply import Partition

__all__ = ["IncomingRecord", "ParsedBatch", "RecordLike", "origin", "parse_records"]


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    """One Kafka record of a canonical topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """A batch of records decoded: its events (and the record each came from), the latest
    event time per partition, the next offset per partition, and the records that are not
    events (to dead-letter)."""

    events: list[DomainEvent]
    progress: dict[Partition, datetime]
    dead: list[DeadLetter]
    sources: list[RecordLike] = field(default_factory=list)
    """The record of each event (same order as ``events``): a poison event is
    dead-lettered as its original record."""
    offsets: dict[Partition, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Records in the batch."""
        return len(self.events) + len(self.dead)


class RecordLike(Protocol):
    """What :func:`parse_records` reads of a record (an :class:`IncomingRecord`, or a
    consumer's record as fetched)."""

    @property
    def topic(self) -> str: ...  # noqa: D102
    @property
    def partition(self) -> int: ...  # noqa: D102
    @property
    def offset(self) -> int: ...  # noqa: D102
    @property
    def key(self) -> bytes | None: ...  # noqa: D102
    @property
    def value(self) -> bytes | None: ...  # noqa: D102


def origin(r: RecordLike) -> str:
    """Where a record was: ``topic/partition/offset`` (a dead letter's origin)."""
    return f"{r.topic}/{r.partition}/{r.offset}"


def parse_records(records: Iterable[RecordLike]) -> ParsedBatch:
    """Decode records into domain events, the latest event time and the next offset per
    partition, and dead letters."""
    events: list[DomainEvent] = []
    sources: list[RecordLike] = []
    progress: dict[Partition, datetime] = {}
    offsets: dict[Partition, int] = {}
    dead: list[DeadLetter] = []
    loads = orjson.loads
    for r in records:
        where = (r.topic, r.partition)
        if offsets.get(where, -1) <= r.offset:
            offsets[where] = r.offset + 1
        try:
            event = parse_event(loads(r.value or b""))
        except (ValueError, KeyError, TypeError) as exc:
            dead.append(
                DeadLetter(r.key, r.value or b"", "projection", f"cannot project: {exc!r}", "",
                           origin(r))
            )  # fmt: skip
            continue
        events.append(event)
        sources.append(r)
        progress[where] = later(progress.get(where), event.at)
    return ParsedBatch(events, progress, dead, sources, offsets)
