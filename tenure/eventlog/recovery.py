"""Recovering from a broker that lost acknowledged events (the memory-only embedded one).

The ingest service keeps the record of every event it acknowledged in ``ingest_pending``
until the archive has it (``tenure/storage/ledger.py``); whatever of it is not in the archive
is published again. Duplicates are harmless: the archive is unique on
``(source, id)`` and the projections are merges.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from tenure.eventlog.publisher import EventPublisher, OutgoingRecord, event_record
from tenure.storage import ledger

log = logging.getLogger(__name__)


def republish_unarchived(
    conn: psycopg.Connection[Any], publisher: EventPublisher, batch_size: int = 1000
) -> int:
    """Publish every acknowledged event missing from the archive again; return how many."""
    total = 0
    batch: list[OutgoingRecord] = []
    for entry in ledger.unarchived(conn):
        batch.append(event_record(entry.topic, entry.record_key, entry.envelope, entry.ingested_at))
        if len(batch) >= batch_size:
            publisher.publish(batch)
            total += len(batch)
            batch = []
    publisher.publish(batch)
    total += len(batch)
    if total:
        log.warning("republished %d acknowledged events the broker had lost", total)
    return total
