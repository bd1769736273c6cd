"""Business gauges for Prometheus, read from the read models at scrape time.

A custom prometheus-client collector: every scrape of the query service's ``/metrics`` counts
the ``persons`` read model by segment, stage, level, tier and buyer kind, the super users and
sponsors, the activation rate, the transitions in the ``lifecycle_transitions`` outbox by kind,
and where the projection and the last ``tenure replay`` stand. Labels are the bounded
vocabularies of the domain; no person or device id ever becomes a label value.

The counts are cached for ``ttl_s`` seconds so several scrapers do not multiply the queries.
One query service runs per process; :func:`install` points the collector at its pool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Self

from prometheus_client.core import GaugeMetricFamily, Metric
from psycopg_pool import ConnectionPool

from services.query.pool_gauges import PoolGauges
from tenure.storage.summary_reads import Snapshot, read_snapshot

log = logging.getLogger(__name__)

PERSON_LABELS = ("segment", "stage", "level", "tier", "buyer_kind")


def families(snap: Snapshot) -> Iterator[Metric]:
    """The metric families of one snapshot."""
    persons = GaugeMetricFamily(
        "tenure_persons",
        "People in the persons read model by segment, stage, level, tier and buyer kind.",
        labels=PERSON_LABELS,
    )
    totals = {"super": 0, "sponsor": 0, "activated": 0, "buyers": 0}
    for seg, stage, level, tier, kind, n, sup, spons, activated, buyers in snap.persons:
        persons.add_metric([seg, stage, level, tier, kind], float(n))
        totals["super"] += sup
        totals["sponsor"] += spons
        totals["activated"] += activated
        totals["buyers"] += buyers
    yield persons
    yield GaugeMetricFamily(
        "tenure_super_users", "People who re-buy and bring others in.", value=totals["super"]
    )
    yield GaugeMetricFamily(
        "tenure_sponsors",
        "People who paid for a device somebody else used (payer is not the user).",
        value=totals["sponsor"],
    )
    yield GaugeMetricFamily(
        "tenure_activation_buyers",
        "Hardware buyers whose activation window is decided (activated within it, or past it).",
        value=totals["buyers"],
    )
    yield GaugeMetricFamily(
        "tenure_activation_activated",
        "Hardware buyers who activated a device within the activation window.",
        value=totals["activated"],
    )
    emitted = GaugeMetricFamily(
        "tenure_lifecycle_transitions_emitted",
        "Lifecycle transitions in the outbox table, by kind (every one the projector emitted).",
        labels=["kind"],
    )
    unpublished = GaugeMetricFamily(
        "tenure_lifecycle_transitions_unpublished",
        "Lifecycle transitions in the outbox not yet published to Kafka, by kind.",
        labels=["kind"],
    )
    for kind, n, pending in snap.transitions:
        emitted.add_metric([kind], float(n))
        unpublished.add_metric([kind], float(pending))
    yield emitted
    yield unpublished
    if snap.max_event_time is not None:
        yield GaugeMetricFamily(
            "tenure_projection_max_event_timestamp_seconds",
            "Latest event time the live projection has seen (Unix seconds).",
            value=snap.max_event_time,
        )
    if snap.checkpoint is not None:
        rebuilt_at, events, seq = snap.checkpoint
        yield GaugeMetricFamily(
            "tenure_replay_last_completed_timestamp_seconds",
            "When the last `tenure replay` swapped its tables in (Unix seconds).",
            value=float(rebuilt_at),
        )
        yield GaugeMetricFamily(
            "tenure_replay_last_events",
            "Events the last `tenure replay` read from the archive.",
            value=float(events),
        )
        yield GaugeMetricFamily(
            "tenure_replay_last_archive_seq",
            "Archive position (seq) the last `tenure replay` reflects.",
            value=float(seq),
        )
    yield GaugeMetricFamily(
        "tenure_business_metrics_read_seconds",
        "Time the last reading of the business numbers took.",
        value=snap.seconds,
    )


class BusinessMetrics(PoolGauges):
    """Collects the business gauges from the pool of the running query service."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, Snapshot] | None = None

    def attach(self, pool: ConnectionPool) -> Self:
        """Read from ``pool`` from now on (forgetting the cached snapshot); register once."""
        with self._lock:
            self._cached = None
            return super().attach(pool)

    def snapshot(self) -> Snapshot | None:
        """The current snapshot (cached for ``ttl_s``), or ``None`` without a usable pool."""
        with self._lock:
            pool = self.pool
            if pool is None or pool.closed:
                return None
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl_s:
                return self._cached[1]
            snap = read_snapshot(pool)
            self._cached = (time.monotonic(), snap)
            return snap

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges; ``tenure_business_metrics_up`` is 0 when the read fails."""
        try:
            snap = self.snapshot()
        except Exception:  # a scrape must not fail because Postgres is briefly away
            log.warning("business metrics could not be read", exc_info=True)
            snap = None
        up = GaugeMetricFamily(
            "tenure_business_metrics_up",
            "1 when the business gauges were read from Postgres on this scrape.",
            value=0.0 if snap is None else 1.0,
        )
        yield up
        if snap is not None:
            yield from families(snap)

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the collector reads Postgres only when scraped."""
        return iter(())


COLLECTOR = BusinessMetrics()


def install(pool: ConnectionPool) -> BusinessMetrics:
    """Register the collector in the default registry (once) and point it at ``pool``."""
    return COLLECTOR.attach(pool)
