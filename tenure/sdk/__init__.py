"""Producer SDKs: over HTTP to the ingest service, or straight to Kafka.

``TenureHttpProducer`` / ``AsyncTenureHttpProducer`` need only httpx; ``TenureProducer``
(Kafka, kafka-python) is imported on first use, so importing this package never loads a
Kafka client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenure.sdk.http_producer import AsyncTenureHttpProducer, RetryPolicy, TenureHttpProducer
from tenure.sdk.results import Accepted, Duplicate, EventResult, Rejected, Undelivered

if TYPE_CHECKING:
    from tenure.sdk.producer import TenureProducer

__all__ = [
    "Accepted",
    "AsyncTenureHttpProducer",
    "Duplicate",
    "EventResult",
    "Rejected",
    "RetryPolicy",
    "TenureHttpProducer",
    "TenureProducer",
    "Undelivered",
]


def __getattr__(name: str) -> Any:
    if name == "TenureProducer":
        from tenure.sdk.producer import TenureProducer

        return TenureProducer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
