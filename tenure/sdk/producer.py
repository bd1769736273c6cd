"""``TenureProducer``: write CloudEvents straight to Kafka (kafka-python).

Records go to ``tenure.sdk-events.v1``; the SDK validator stream worker validates them and
forwards them to their canonical topic, or parks them in the dead-letter topic with the
reason. Keys follow the same routing as the ingest service, so one device's events stay in
order on one partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from kafka import KafkaProducer

from tenure.contract.topics import ROUTES, SDK_EVENTS


def sdk_record_key(event: Mapping[str, Any]) -> bytes:
    """The key an SDK record is sent with: the routing key when present, else the event id."""
    route = ROUTES.get(str(event.get("type")))
    data = event.get("data")
    if route and isinstance(data, Mapping) and isinstance(data.get(route.key_field), str):
        return str(data[route.key_field]).encode()
    return str(event.get("id", "")).encode()


class TenureProducer:
    """Send events to Tenure through Kafka (acks=all, idempotent)."""

    def __init__(self, bootstrap: str, **producer_options: Any) -> None:
        options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "client_id": "tenure-sdk",
        }
        options.update(producer_options)
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, **options)

    def send(self, event: Mapping[str, Any]) -> Any:
        """Queue one event (a CloudEvents 1.0 structured-mode dict); returns kafka's future."""
        return self._producer.send(
            SDK_EVENTS,
            key=sdk_record_key(event),
            value=orjson.dumps(event),
            headers=[("content-type", b"application/cloudevents+json; charset=utf-8")],
        )

    def send_all(self, events: Iterable[Mapping[str, Any]], timeout_s: float = 30.0) -> int:
        """Send events and wait until the broker acknowledged every one; return the count."""
        futures = [self.send(e) for e in events]
        self._producer.flush(timeout=timeout_s)
        for future in futures:
            future.get(timeout=timeout_s)
        return len(futures)

    def close(self) -> None:
        """Flush and close."""
        self._producer.close()
