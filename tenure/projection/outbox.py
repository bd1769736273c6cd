"""Publishing lifecycle transitions from the Postgres outbox to Kafka.

Transitions are written to ``lifecycle_transitions`` in the same transaction as the rows
that caused them; this relay publishes the unpublished ones (acknowledged by the broker)
and only then marks them published. A crash in between publishes them again with the same
deterministic ids, so consumers de-duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from tenure.contract import format_time
from tenure.contract.topics import LIFECYCLE_TRANSITIONS
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import isolate
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.storage import transitions_outbox
from tenure.storage.connection import Conn

TRANSITION_TYPE = "tenure.lifecycle.transition"
TRANSITION_SOURCE = "urn:tenure:lifecycle"


def publish_or_park(
    conn: Conn,
    records: list[OutgoingRecord],
    publisher: EventPublisher,
    sink: DeadLetterSink,
    origin: str,
) -> list[tuple[OutgoingRecord, DeadLetter]]:
    """Publish ``records``; the ones the broker refuses on their own (found by
    :func:`~tenure.eventlog.isolation.isolate`) are stored and published as dead letters
    (origin ``<origin>/<digest of the value>``), in the caller's transaction. Returns each
    refused record with its dead letter (the caller counts them once it commits)."""
    parked = [
        (p.item, DeadLetter(p.item.key.encode(), p.item.value, p.category, p.reason, "",
                            f"{origin}/{hashlib.sha256(p.item.value).hexdigest()[:16]}"))
        for p in isolate(records, publisher.publish)
    ]  # fmt: skip
    letters = [letter for _, letter in parked]
    sink.store(conn, letters)
    sink.publish(letters)
    return parked


def transition_event(
    transition_id: str,
    person_id: str,
    kind: str,
    old: str,
    new: str,
    effective_at: datetime,
    as_of: datetime,
) -> dict[str, Any]:
    """The CloudEvent published for one transition (its id is the transition's id)."""
    return {
        "specversion": "1.0",
        "id": transition_id,
        "source": TRANSITION_SOURCE,
        "type": TRANSITION_TYPE,
        "time": format_time(effective_at),
        "subject": person_id,
        "datacontenttype": "application/json",
        "data": {
            "person_id": person_id,
            "kind": kind,
            "old": old,
            "new": new,
            "as_of": format_time(as_of),
        },
    }


def publish_pending(
    conn: Conn,
    publisher: EventPublisher,
    limit: int = 1000,
    by_kind: dict[str, int] | None = None,
    dead_letters: DeadLetterSink | None = None,
    person_ref: Callable[[str], str] = str,
) -> int:
    """Publish up to ``limit`` unpublished transitions in outbox order; return how many
    left the outbox (published, or dead-lettered: a record the broker refuses on its own,
    e.g. over its size limit, is isolated, dead-lettered to ``dead_letters`` and marked
    so that it does not block the others).

    ``by_kind``, when given, is incremented per transition kind published. ``person_ref``
    turns the outbox's person id into what is published (the projector passes the token:
    docs/design/erasure.md).
    """
    sink = dead_letters or DeadLetterSink("outbox", publisher)
    letters: list[DeadLetter] = []
    with conn.transaction():
        rows = transitions_outbox.lock_unpublished(conn, limit)
        if not rows:
            return 0
        records = [
            OutgoingRecord(
                LIFECYCLE_TRANSITIONS,
                person_ref(str(r[1])),
                orjson.dumps(transition_event(r[0], person_ref(str(r[1])), *r[2:])),
            )
            for r in rows
        ]
        parked = publish_or_park(conn, records, publisher, sink, f"outbox/{LIFECYCLE_TRANSITIONS}")
        letters = [letter for _, letter in parked]
        transitions_outbox.mark_published(conn, [r[0] for r in rows])
    sink.count(letters)
    if by_kind is not None:
        failed = {id(record) for record, _ in parked}
        for r, record in zip(rows, records, strict=True):
            if id(record) not in failed:
                by_kind[str(r[2])] = by_kind.get(str(r[2]), 0) + 1
    return len(rows)
