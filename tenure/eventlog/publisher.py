"""Publishing validated events to their topics and waiting for the broker's acknowledgement."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import DefaultPartitioner, murmur2

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


def encode_envelope(envelope: Mapping[str, Any]) -> bytes:
    """An envelope as the JSON bytes of its record (orjson; the stdlib for an integer beyond
    64 bits, which orjson refuses and the contract bounds anyway)."""
    try:
        return orjson.dumps(envelope)
    except orjson.JSONEncodeError:
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


@lru_cache(maxsize=64)
def event_headers(ingested_at: datetime) -> tuple[tuple[str, bytes], ...]:
    """The headers of an accepted event's record: ``content-type`` (structured-mode
    CloudEvents JSON) and the ingest time. A batch's records share one ingest time, so they
    share one tuple, formatted once."""
    return (
        (CONTENT_TYPE_HEADER, CLOUDEVENTS_CONTENT_TYPE),
        (INGEST_TIME_HEADER, format_time(ingested_at).encode()),
    )


def event_record(
    topic: str,
    key: str,
    envelope: Mapping[str, Any],
    ingested_at: datetime,
    *,
    value: bytes | None = None,
) -> OutgoingRecord:
    """The record of one accepted event: its envelope, keyed, with the ingest-time header.

    Every record on a canonical topic is made here (ingest, the SDK validator, recovery), so
    all carry the same headers (:func:`event_headers`). ``value``: the envelope already
    encoded by :func:`encode_envelope` (ingest encodes once for the ledger and the record).
    """
    return OutgoingRecord(
        topic=topic,
        key=key,
        value=encode_envelope(envelope) if value is None else value,
        headers=event_headers(ingested_at),
    )


def _with_content_type(headers: tuple[tuple[str, bytes], ...]) -> list[tuple[str, bytes]]:
    """The headers of a record, with the CloudEvents ``content-type`` unless it has one."""
    if any(name == CONTENT_TYPE_HEADER for name, _ in headers):
        return list(headers)
    return [(CONTENT_TYPE_HEADER, CLOUDEVENTS_CONTENT_TYPE), *headers]


_KEY_HASHES_LIMIT = 100_000


class KeyHashPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """kafka-python's default partitioner (murmur2 of the key, as the Java client), with
    each key's hash remembered: the hash is pure Python (~4% of the ingest service's CPU)
    and a person's or device's key recurs. Same partition for every key as the default;
    records without a key are placed by the default."""

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def partition(
        self,
        topic: str,
        key: object,
        serialized_key: bytes | None,
        value: object,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        """The partition of a record (kafka-python's ``Partitioner`` interface)."""
        if serialized_key is None:
            return int(
                super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            )
        partitions = cluster.partitions_for_topic(topic)
        if partitions is None:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        hashed = self._hashes.get(serialized_key)
        if hashed is None:
            if len(self._hashes) >= _KEY_HASHES_LIMIT:
                self._hashes.clear()
            hashed = self._hashes[serialized_key] = murmur2(serialized_key) & 0x7FFFFFFF
        ordered = sorted(partitions)
        return int(ordered[hashed % len(ordered)])


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
                    partitioner=KeyHashPartitioner(),
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
            futures = []
            shared: tuple[tuple[str, bytes], ...] | None = None
            headers: list[tuple[str, bytes]] = []
            for r in records:
                if r.headers is not shared:  # a batch's records share one headers tuple
                    shared, headers = r.headers, _with_content_type(r.headers)
                futures.append(
                    producer.send(
                        r.topic,
                        key=r.key.encode(),
                        value=None if r.tombstone else r.value,
                        headers=headers,
                    )
                )
            producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            self._reset()
            raise PublishFailed(f"broker did not acknowledge the batch: {exc!r}") from exc

    def close(self) -> None:
        """Flush and close the producer."""
        self._reset()
