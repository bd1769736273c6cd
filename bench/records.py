"""Kafka records exactly as the ingest service publishes them, and a raw producer for them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from bench.events import Event
from tenure.contract import Rejection, validate_event
from tenure.contract.validation import DEFAULT_FUTURE_TOLERANCE
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord, event_record


def ingest_records(events: Sequence[Event], at: datetime | None = None) -> list[OutgoingRecord]:
    """The records the ingest service would publish for ``events`` (all must be valid)."""
    received_at = at or datetime.now(UTC)
    records = []
    for e in events:
        checked = validate_event(e, now=received_at, future_tolerance=DEFAULT_FUTURE_TOLERANCE)
        if isinstance(checked, Rejection):
            raise ValueError(f"event {e.get('id')} is invalid: {checked}")
        envelope = checked.to_json_dict(ingest_time=received_at)
        records.append(event_record(checked.topic(), checked.key(), envelope, received_at))
    return records


class RawProducer:
    """kafka-python's producer with exactly ``EventPublisher``'s settings, used directly.

    The producer is taken from an ``EventPublisher`` so that the settings cannot drift apart
    (acks=all, idempotent, linger, batch size, timeouts); ``send_batch`` then does what
    ``EventPublisher.publish`` does, minus its error handling.
    """

    def __init__(self, bootstrap: str) -> None:
        self._publisher = EventPublisher(bootstrap)
        self.producer: KafkaProducer = self._publisher._get()

    def send_batch(self, records: Sequence[OutgoingRecord], *, wait: bool = True) -> None:
        """Send ``records``; with ``wait``, flush and wait for every acknowledgement."""
        futures: list[Any] = [
            self.producer.send(
                r.topic,
                key=r.key.encode(),
                value=r.value,
                headers=list(r.headers),  # content-type and ingest time, as ingest sends
            )
            for r in records
        ]
        if wait:
            self.producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=30)

    def flush(self) -> None:
        """Wait until every record sent so far is acknowledged."""
        self.producer.flush(timeout=60)

    def close(self) -> None:
        """Close the producer."""
        self._publisher.close()


def produce_all(bootstrap: str, records: Sequence[OutgoingRecord]) -> float:
    """Produce ``records`` as one stream (a single flush at the end); return the seconds."""
    producer = RawProducer(bootstrap)
    try:
        producer.send_batch(records[:1])  # connect and fetch metadata outside the timing
        started = time.perf_counter()
        producer.send_batch(records[1:], wait=False)
        producer.flush()
        return time.perf_counter() - started
    finally:
        producer.close()
