"""Recovering from a broker that lost acknowledged events (the memory-only embedded one).

The ingest ledger holds every event the ingest service acknowledged; whatever of it is not
in the archive yet is published again. Duplicates are harmless: the archive is unique on
``(source, id)`` and the projections are merges.
"""

from __future__ import annotations

import logging

import orjson
import psycopg

from tenure.contract import format_time
from tenure.contract.topics import INGEST_TIME_HEADER
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.storage import ledger

log = logging.getLogger(__name__)


def republish_unarchived(
    conn: psycopg.Connection[object], publisher: EventPublisher, batch_size: int = 1000
) -> int:
    """Publish every ledger entry missing from the archive again; return how many."""
    total = 0
    batch: list[OutgoingRecord] = []
    for entry in ledger.unarchived(conn):
        stamp = format_time(entry.ingested_at).encode()
        batch.append(
            OutgoingRecord(
                topic=entry.topic,
                key=entry.record_key,
                value=orjson.dumps(entry.envelope),
                headers=((INGEST_TIME_HEADER, stamp),),
            )
        )
        if len(batch) >= batch_size:
            publisher.publish(batch)
            total += len(batch)
            batch = []
    publisher.publish(batch)
    total += len(batch)
    if total:
        log.warning("republished %d acknowledged events the broker had lost", total)
    return total
