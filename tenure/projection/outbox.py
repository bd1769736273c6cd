"""Publishing lifecycle transitions from the Postgres outbox to Kafka.

Transitions are written to ``lifecycle_transitions`` in the same transaction as the rows
that caused them; this relay publishes the ones after its position (acknowledged by the
broker) and only then moves the position. A crash in between publishes them again with the
same deterministic ids, so consumers de-duplicate. The relay step (:func:`relay_pending`)
reads the outbox and moves the position through the storage seam
(:class:`~tenure.storage.seam.TransitionsOutbox`), so it runs on the memory backend in unit
tests; :func:`publish_pending` runs it on Postgres.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from tenure.contract import format_time
from tenure.contract.topics import LIFECYCLE_TRANSITIONS
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import isolate
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.storage.connection import Conn, repeatable_read_transaction
from tenure.storage.postgres_store import PostgresOutbox
from tenure.storage.seam import TransitionsOutbox

Publish = Callable[[Sequence[OutgoingRecord]], None]
"""Publish records and return once the broker acknowledged them all (``EventPublisher.publish``;
raises ``PublishFailed`` otherwise)."""

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
    return _publish_or_park(records, publisher.publish, sink, partial(sink.store, conn), origin)


def _publish_or_park(
    records: list[OutgoingRecord],
    publish: Publish,
    sink: DeadLetterSink,
    store: Callable[[Sequence[DeadLetter]], None],
    origin: str,
) -> list[tuple[OutgoingRecord, DeadLetter]]:
    parked = [
        (p.item, DeadLetter(p.item.key.encode(), p.item.value, p.category, p.reason, "",
                            f"{origin}/{hashlib.sha256(p.item.value).hexdigest()[:16]}"))
        for p in isolate(records, publish)
    ]  # fmt: skip
    letters = [letter for _, letter in parked]
    store(letters)
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


@dataclass(frozen=True, slots=True)
class Relayed:
    """What one relay step took out of the outbox (count it once it is durable)."""

    taken: int
    """Transitions that left the outbox: published or dead-lettered."""
    letters: list[DeadLetter]
    """Dead letters of the records the broker refused on their own."""
    kinds: Counter[str]
    """Transitions published, per kind."""


def relay_pending(
    outbox: TransitionsOutbox,
    publish: Publish,
    sink: DeadLetterSink,
    store_letters: Callable[[Sequence[DeadLetter]], None],
    *,
    limit: int = 1000,
    person_ref: Callable[[str], str] = str,
) -> Relayed:
    """One relay step over the outbox seam: claim the relay, take up to ``limit``
    transitions after its position in outbox order, publish them (``publish`` returns once
    the broker acknowledged; a record it refuses on its own is dead-lettered:
    ``store_letters``, then the topic) and only then move the position past them. A failed
    publish raises before the position moves, so the same transitions are taken again next
    time (at least once; consumers de-duplicate by id). Nothing is taken while another relay
    holds the outbox.

    Run it in one transaction with ``outbox`` and ``store_letters`` (Postgres: a
    repeatable-read one, holding the relay until it commits)."""
    position = outbox.claim_relay()
    if position is None:
        return Relayed(0, [], Counter())
    rows, next_position = outbox.after(position, limit)
    if not rows:
        return Relayed(0, [], Counter())
    records = [
        OutgoingRecord(
            LIFECYCLE_TRANSITIONS,
            person_ref(r.person_id),
            orjson.dumps(
                transition_event(
                    r.transition_id,
                    person_ref(r.person_id),
                    r.kind,
                    r.old,
                    r.new,
                    r.effective_at,
                    r.as_of,
                )
            ),
        )
        for r in rows
    ]
    parked = _publish_or_park(
        records, publish, sink, store_letters, f"outbox/{LIFECYCLE_TRANSITIONS}"
    )
    outbox.move_relay(next_position)
    failed = {id(record) for record, _ in parked}
    kinds = Counter(r.kind for r, record in zip(rows, records, strict=True)
                    if id(record) not in failed)  # fmt: skip
    return Relayed(len(rows), [letter for _, letter in parked], kinds)


def publish_pending(
    conn: Conn,
    publisher: EventPublisher,
    limit: int = 1000,
    by_kind: dict[str, int] | None = None,
    dead_letters: DeadLetterSink | None = None,
    person_ref: Callable[[str], str] = str,
) -> int:
    """Publish up to ``limit`` unpublished transitions in outbox order (one
    :func:`relay_pending` step over ``conn``, in a repeatable-read transaction of its own);
    return how many left the outbox (published, or dead-lettered: a record the broker
    refuses on its own, e.g. over its size limit, is isolated, dead-lettered to
    ``dead_letters`` and passed so that it does not block the others). 0 also when another
    relay holds the outbox.

    Raises :class:`psycopg.errors.SerializationFailure`, having published nothing, when
    another relay moved the position after this transaction's snapshot: run it again.

    ``by_kind``, when given, is incremented per transition kind published. ``person_ref``
    turns the outbox's person id into what is published (the projector passes the token:
    docs/design/erasure.md).
    """
    sink = dead_letters or DeadLetterSink("outbox", publisher)
    with repeatable_read_transaction(conn):
        relayed = relay_pending(
            PostgresOutbox(conn), publisher.publish, sink, partial(sink.store, conn),
            limit=limit, person_ref=person_ref,
        )  # fmt: skip
    sink.count(relayed.letters)
    if by_kind is not None:
        for kind, n in relayed.kinds.items():
            by_kind[kind] = by_kind.get(kind, 0) + n
    return relayed.taken
