"""Prometheus metrics of the ingest service. Labels never carry person or event ids."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "tenure_ingest_events",
    "Events received by POST /v1/events, by outcome (accepted | duplicate | rejected), "
    "event type (or 'unknown') and rejection category ('' unless rejected).",
    ["outcome", "type", "category"],
)
REQUESTS = Counter(
    "tenure_ingest_requests", "POST /v1/events requests by HTTP status code.", ["status"]
)
BATCH_SIZE = Histogram(
    "tenure_ingest_batch_events",
    "Events per accepted request body.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000),
)
PUBLISH_SECONDS = Histogram(
    "tenure_ingest_publish_seconds",
    "Time from claiming a batch to the broker acknowledging all of its records.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PUBLISH_FAILURES = Counter(
    "tenure_ingest_publish_failures", "Batches the broker did not acknowledge (answered 503)."
)
