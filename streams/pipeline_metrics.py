"""Pipeline metrics every stream worker shares: dead letters, consumer lag, readiness.

Defined once so that workers running in one Python process (tests, embedded runs) do not
register the same metric name twice. Labels are bounded: worker or consumer group names,
topics, partition numbers and rejection categories (``malformed``, ``envelope``, the
contract's categories); never an id.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Gauge

from tenure.eventlog.deadletter import DEAD_LETTER_COUNT

DEAD_LETTERS = DEAD_LETTER_COUNT
"""``tenure_dead_letters_total{worker, category}`` (defined with the dead-letter sink)."""


def _consumer_lag() -> Gauge:
    """``tenure_consumer_lag``; reused if another worker's module registered it first."""
    existing = getattr(REGISTRY, "_names_to_collectors", {}).get("tenure_consumer_lag")
    if isinstance(existing, Gauge):
        return existing
    return Gauge(
        "tenure_consumer_lag",
        "Records behind the fetch high watermark, per consumer group, topic and partition.",
        ["group", "topic", "partition"],
    )


CONSUMER_LAG = _consumer_lag()


WORKER_READY = Gauge(
    "tenure_worker_ready",
    "1 while the worker's database writes succeed; 0 while it waits for the database "
    "(it retries the batch with backoff, nothing is skipped).",
    ["worker"],
)
