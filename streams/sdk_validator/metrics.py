"""Prometheus metrics of the SDK validator. Labels never carry person or event ids."""

from __future__ import annotations

from prometheus_client import Counter

SDK_RECORDS = Counter(
    "tenure_sdk_records",
    "Records from SDK clients, by outcome (forwarded | dead_lettered) and category "
    "('' when forwarded).",
    ["outcome", "category"],
)
