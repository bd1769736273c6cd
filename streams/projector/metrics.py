"""Prometheus metrics of the projector. Labels never carry person or event ids."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tenure.eventlog.batch_loop import CONSUMER_LAG as CONSUMER_LAG
from tenure.storage.state_cache import RawCaches

RECORDS = Counter(
    "tenure_projector_records",
    "Records read by the projector, by outcome (applied | dead_lettered).",
    ["outcome"],
)
APPLY_SECONDS = Histogram(
    "tenure_projector_apply_seconds",
    "Time of one batch's write stage: append its deltas, queue its keys, commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_RECORDS = Histogram(
    "tenure_projector_batch_records",
    "Records per projector batch.",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000),
)
DERIVED = Counter(
    "tenure_projector_derived",
    "Read-model rows derived, by kind (person | device).",
    ["kind"],
)
TRANSITIONS = Counter(
    "tenure_lifecycle_transitions_published",
    "Lifecycle transitions published to tenure.lifecycle.transitions.v1, by kind"
    " (segment | stage | level | tier | super_user).",
    ["kind"],
)
VIEW_LAG = Histogram(
    "tenure_projector_view_lag_seconds",
    "Seconds from a key's queueing for derive (when its oldest queue mark was written: by the"
    " apply stage's batch, a time-driven tick) until a derive pass had written its view;"
    " one observation per person or device view written, by kind (person | device).",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300),
)
VIEW_KINDS = ("person", "device")
"""The kinds of derived views (the ``kind`` label)."""
for _kind in VIEW_KINDS:  # every series from the start: a first view is an increase Prometheus
    DERIVED.labels(_kind)  # sees (rate, histogram_quantile), not a series appearing mid-way
    VIEW_LAG.labels(_kind)

BACKLOG = Gauge(
    "tenure_projector_backlog",
    "Persons and devices queued to be derived, by kind (person | device).",
    ["kind"],
)
DELTAS = Gauge(
    "tenure_projector_raw_deltas",
    "Raw-state delta rows not yet compacted, by kind (person | device).",
    ["kind"],
)
FOLLOW_BACKLOG = Gauge(
    "tenure_projector_follow_backlog",
    "What the follow stage has left, by part: transitions not yet published"
    " (transitions_unpublished), persons changes and removals not yet relayed to the persons"
    " topic (persons_changes_unrelayed), persons changes the audience stage has not yet"
    " evaluated for every audience (audience_changes_unevaluated), and the aggregates stage's"
    " queue marks (survival_marks, churn_marks).",
    ["part"],
)
"""Set by the follow stage's refreshes (every part at once): no series before the first."""
PROCESSING_LAG = Histogram(
    "tenure_projector_event_age_seconds",
    "Age of events when applied: now minus event time (devices sync late, so this is wide).",
    buckets=(1, 5, 30, 60, 300, 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400),
)


INGEST_LATENCY = Histogram(
    "tenure_projector_ingest_latency_seconds",
    "Now minus the Kafka record timestamp when the record's batch is durable in Postgres"
    " (observed per batch and partition, for its oldest record).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
SINK_WRITE_SECONDS = Histogram(
    "tenure_projector_sink_write_seconds",
    "Time of one batch's Postgres transaction (merge into the raw states and commit).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
AUDIENCE_CHANGES = Counter(
    "tenure_audience_changes",
    "Audience membership changes written (and published to tenure.audiences.v1), by audience"
    " and change (entered | exited | suppression_changed).",
    ["audience", "change"],
)
AUDIENCE_SUPPRESSIONS = Counter(
    "tenure_audience_suppressions",
    "Audience members suppressed (not to be contacted), by audience and reason"
    " (no_consent | quiet_period | erased): counted when a member enters suppressed, is"
    " suppressed while a member, or exits erased.",
    ["audience", "reason"],
)
AUDIENCE_MEMBERS = Gauge(
    "tenure_audience_members",
    "Current members per audience, by state (contactable, or the suppression reason).",
    ["audience", "state"],
)


class StateCacheCollector(Collector):
    """The process's cache of decoded raw states, read at scrape time (no cost on the hot
    path): compacted-state reads served from it or decoded, its estimated bytes and bound,
    by kind (device | person). Nothing before a projector is given (:attr:`caches`)."""

    def __init__(self) -> None:
        self.caches: RawCaches | None = None

    def describe(self) -> list[Metric]:
        """Nothing to describe ahead of a scrape (the series come from :attr:`caches`)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The cache's counters and sizes as they are now."""
        caches = self.caches
        if caches is None:
            return
        reads = CounterMetricFamily(
            "tenure_projector_state_cache_reads",
            "Compacted raw states the derive stage read, by kind (device | person)"
            " and result: hit (served decoded from this process's cache, the row unchanged)"
            " or miss (decoded from its document).",
            labels=["kind", "result"],
        )
        used = GaugeMetricFamily(
            "tenure_projector_state_cache_bytes",
            "Estimated bytes of decoded raw states the cache holds, by kind (device | person).",
            labels=["kind"],
        )
        limit = GaugeMetricFamily(
            "tenure_projector_state_cache_limit_bytes",
            "The bound of tenure_projector_state_cache_bytes, by kind (device | person): a"
            " share of TENURE_PROJECTOR_CACHE_MB.",
            labels=["kind"],
        )
        for kind, cache in (("device", caches.devices), ("person", caches.persons)):
            reads.add_metric([kind, "hit"], cache.hits)
            reads.add_metric([kind, "miss"], cache.misses)
            used.add_metric([kind], cache.used_bytes)
            limit.add_metric([kind], cache.limit_bytes)
        yield reads
        yield used
        yield limit


STATE_CACHE = StateCacheCollector()
"""Registered once per process; ``create_app`` gives it the projector's caches."""
REGISTRY.register(STATE_CACHE)
