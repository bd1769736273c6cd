"""Prometheus metrics of the archiver. Labels never carry person or event ids."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
CONSUMER_LAG = Gauge(
    "tenure_consumer_lag",
    "Records behind the fetch high watermark, per consumer group, topic and partition.",
    ["group", "topic", "partition"],
)
