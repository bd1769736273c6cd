"""Publishing each changed person to the compacted topic ``tenure.persons.v1``.

The relay follows the same change feed as ``GET /v1/persons?updated_since=``
(:mod:`tenure.storage.person_changes`), from a position kept in Postgres: it reads a page in
one repeatable-read snapshot, publishes it, and moves the position only once the broker
acknowledged, in the same transaction (an outbox whose rows are the ``persons`` table's
own change stamps). So only committed changes go out, each at least once after its commit;
a crash in between publishes the page again, with the same values, which a compacted topic
and a consumer keyed by token absorb. One relay at a time (an advisory lock), so records go
out in change order.

A record is keyed by the person's token; its value is the person's row as the persons list
shows it (without the read-time ``churn_risk``), with every person id replaced by its token
(``person_id``, ``aliases``): no topic Tenure writes holds a person id
(docs/design/erasure.md). A removed person (merged into another, or erased) gets a
tombstone (a null value), so compaction drops its last view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tenure.contract.topics import PERSONS
from tenure.eventlog.deadletter import DeadLetterSink
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.projection.outbox import publish_or_park
from tenure.storage import person_changes, person_reads
from tenure.storage.connection import Conn, repeatable_read_transaction

JSON_HEADERS = (("content-type", b"application/json"),)


def person_value(row: dict[str, Any], token: Callable[[str], str]) -> bytes:
    """The record value of one person row: ids as tokens, JSON."""
    shown = {**row, "person_id": token(str(row["person_id"]))}
    shown["aliases"] = sorted(token(str(a)) for a in row.get("aliases") or ())
    return orjson.dumps(shown, option=orjson.OPT_UTC_Z)


def publish_person_changes(
    conn: Conn,
    publisher: EventPublisher,
    token: Callable[[str], str],
    limit: int = 1000,
    dead_letters: DeadLetterSink | None = None,
) -> int:
    """Publish up to ``limit`` person changes after the relay's position; return how many
    (0 when nothing changed or another relay is publishing). A record the broker refuses on
    its own (e.g. over its size limit) is dead-lettered so it does not block the others.

    Raises :class:`psycopg.errors.SerializationFailure`, having published nothing, when
    another relay moved the position after this transaction's snapshot: run it again (the
    caller's retry of conflicts, as for the audience stage)."""
    sink = dead_letters or DeadLetterSink("persons-topic", publisher)
    with repeatable_read_transaction(conn):
        position = person_changes.claim_relay(conn)
        if position is None:
            return 0
        page = person_reads.persons_changed(conn, position, limit)
        records = [
            OutgoingRecord(
                PERSONS, token(str(r["person_id"])), person_value(r, token), JSON_HEADERS
            )
            for r in page.persons
        ] + [
            OutgoingRecord(PERSONS, token(p), b"", JSON_HEADERS, tombstone=True)
            for p in page.removed
        ]
        if not records:
            return 0
        letters = [
            letter for _, letter in publish_or_park(conn, records, publisher, sink, "persons")
        ]
        person_changes.move_relay(conn, page.next)
    sink.count(letters)
    return len(records)
