"""Publishing validated events to their topics and waiting for the broker's acknowledgement."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from tenure.contract import format_time
from tenure.contract.topics import INGEST_TIME_HEADER
from tenure.errors import TenureError

log = logging.getLogger(__name__)

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"
CONTENT_TYPE_HEADER = "content-type"


class PublishFailed(TenureError, RuntimeError):
    """The broker did not acknowledge every record; none of the batch may count as accepted."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to publish: topic, key, value and headers."""

    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    tombstone: bool = False
    """Publish a null value instead of ``value`` (a compacted topic's deletion of the key)."""


def event_record(
    topic: str, key: str, envelope: Mapping[str, Any], ingested_at: datetime
) -> OutgoingRecord:
    """The record of one accepted event: its envelope, keyed, with the ingest-time header.

    Every record on a canonical topic is made here (ingest, the SDK validator, recovery), so
    all carry the same headers: ``content-type`` (structured-mode CloudEvents JSON) and the
    ingest time.
    """
    return OutgoingRecord(
        topic=topic,
        key=key,
        value=orjson.dumps(envelope),
        headers=(
            (CONTENT_TYPE_HEADER, CLOUDEVENTS_CONTENT_TYPE),
            (INGEST_TIME_HEADER, format_time(ingested_at).encode()),
        ),
    )


def _with_content_type(headers: tuple[tuple[str, bytes], ...]) -> list[tuple[str, bytes]]:
    """The headers of a record, with the CloudEvents ``content-type`` unless it has one."""
    if any(name == CONTENT_TYPE_HEADER for name, _ in headers):
        return list(headers)
    return [(CONTENT_TYPE_HEADER, CLOUDEVENTS_CONTENT_TYPE), *headers]


class EventPublisher:
    """A kafka-python producer (acks=all, idempotent where the broker allows it).

    After a failed batch the producer is closed and a new one made for the next batch: an
    idempotent producer whose broker lost its state (a restarted memory-only broker) fails
    forever with ``UnknownProducerId`` otherwise.
    """

    def __init__(self, bootstrap: str, *, idempotent: bool = True, timeout_s: float = 15.0) -> None:
        self.bootstrap = bootstrap
        self.idempotent = idempotent
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=self.idempotent,
                    linger_ms=2,
                    batch_size=256 * 1024,
                    max_request_size=4 * 1024 * 1024,
                    request_timeout_ms=int(self.timeout_s * 1000),
                    bootstrap_timeout_ms=int(self.timeout_s * 1000),
                    max_block_ms=int(self.timeout_s * 1000),
                    reconnect_backoff_max_ms=1000,
                    client_id="tenure-publisher",
                )
            return self._producer

    def _reset(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=2)
            except Exception as exc:
                log.warning("closing a failed producer: %s", exc)

    def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Send every record and wait until the broker acknowledged all of them."""
        if not records:
            return
        try:
            producer = self._get()
            futures = [
                producer.send(
                    r.topic,
                    key=r.key.encode(),
                    value=None if r.tombstone else r.value,
                    headers=_with_content_type(r.headers),
                )
                for r in records
            ]
            producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            self._reset()
            raise PublishFailed(f"broker did not acknowledge the batch: {exc!r}") from exc

    def close(self) -> None:
        """Flush and close the producer."""
        self._reset()
