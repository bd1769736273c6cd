"""Prometheus metrics of the archiver. Labels never carry person or event ids."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Shared with the other workers; kept importable from here.
from tenure.eventlog.batch_loop import CONSUMER_LAG as CONSUMER_LAG

RECORDS = Counter(
    "tenure_archive_records",
    "Records read by the archiver, by topic and outcome (archived | duplicate | dead_lettered).",
    ["topic", "outcome"],
)
WRITE_SECONDS = Histogram(
    "tenure_archive_write_seconds",
    "Time to write one batch to Postgres and commit it.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_RECORDS = Histogram(
    "tenure_archive_batch_records",
    "Records per archived batch.",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000),
)
EVENT_AGE = Histogram(
    "tenure_archive_event_age_seconds",
    "Processing latency from event time: now minus the event's time when its row is committed "
    "(devices sync late, so this is wide).",
    buckets=(1, 5, 30, 60, 300, 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400),
)
INGEST_LATENCY = Histogram(
    "tenure_archive_ingest_latency_seconds",
    "Processing latency from ingest time: now minus the time the ingest service or SDK "
    "validator accepted the event, when its archive row is committed.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
