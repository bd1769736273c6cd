"""What the Tenure processes can expose on /metrics, read from the real metric definitions.

``exposed_names()`` lists every sample name (for checking dashboards and alert rules against
them). ``python -m tests.unit.deploy.exposition`` prints one exposition holding every metric
family with at least one sample (labelled metrics get one child each), for
``promtool check metrics``. It runs in its own process because it sets label values on the
process-wide registry.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import date

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.metrics import MetricWrapperBase

from services.query.business_metrics import BusinessMetrics, Snapshot
from services.query.churn_metrics import families as churn_families
from services.query.survival_metrics import SurvivalCollector
from streams.projector.metrics import STATE_CACHE, StateCacheCollector
from tenure.analytics.calibration import ReliabilityRow
from tenure.analytics.churn_backtest import Backtest
from tenure.storage.state_cache import RawCaches
from tests.unit.deploy.dashboards import ROOT

METRIC_MODULES = (
    "services.ingest.metrics",
    "streams.archiver.metrics",
    "streams.sdk_validator.metrics",
    "streams.projector.metrics",
    "streams.pipeline_metrics",
    "tenure.entrypoints.replay_metrics",
)
"""Every module that defines metrics in the default registry."""

SNAPSHOT = Snapshot(
    persons=[("customer_only", "new", "micro", "none", "one_time_buyer", 1, 0, 0, 0, 1)],
    transitions=[("segment", 1, 0)],
    max_event_time=1.0,
    checkpoint=(1.0, 1, 1),
)
"""A business snapshot with every optional gauge present."""


CHURN_BACKTEST = Backtest(date(2026, 1, 1), 30, 10, 3, 0.9, 0.1, (ReliabilityRow(10, 0.3, 0.3),))
"""A churn backtest with every gauge present."""


class _QueryGauges(BusinessMetrics):
    """The query service's scrape-time gauges, from :data:`SNAPSHOT` (no database)."""

    def snapshot(self) -> Snapshot:
        return SNAPSHOT

    def collect(self) -> Iterator[Metric]:
        yield from super().collect()
        for metric in SurvivalCollector().describe():
            metric.add_sample(metric.name, {"group": "all"}, 1.0)
            yield metric
        yield from churn_families(CHURN_BACKTEST, care=1)


def _defined_metrics() -> list[MetricWrapperBase]:
    """The metric objects the modules of :data:`METRIC_MODULES` define."""
    found: dict[int, MetricWrapperBase] = {}
    for name in METRIC_MODULES:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, MetricWrapperBase):
                found[id(value)] = value
    return list(found.values())


def _state_cache() -> StateCacheCollector:
    """The projector's scrape-time cache collector, given caches (empty)."""
    collector = StateCacheCollector()
    collector.caches = RawCaches()
    return collector


def collected_families() -> list[Metric]:
    """Every family a Tenure process can expose: the modules' metrics, the query service's
    and the projector's scrape-time families and the client library's process, platform
    and GC collectors."""
    standard = (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR)
    return [
        *(family for metric in _defined_metrics() for family in metric.collect()),
        *_QueryGauges().collect(),
        *_state_cache().collect(),
        *(family for collector in standard for family in collector.collect()),
    ]


def exposed_names() -> set[str]:
    """Every sample name the processes can expose (registered metrics and business gauges)."""
    names = {"up"}
    for metric in collected_families():
        names.add(metric.name + ("_total" if metric.type == "counter" else ""))
        names |= {s.name for s in metric.samples}
        if metric.type == "histogram":
            names |= {f"{metric.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
    return names


def exposition_text() -> str:
    """The exposition of every family, built in a child process (see the module doc)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.unit.deploy.exposition"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def _print_every_family() -> None:
    for metric in _defined_metrics():
        if metric._labelnames:
            child = metric.labels(*["x"] * len(metric._labelnames))
            if isinstance(child, Counter):
                child.inc()
            elif isinstance(child, Gauge):
                child.set(1)
            elif isinstance(child, Histogram | Summary):
                child.observe(1)
    REGISTRY.register(_QueryGauges())
    STATE_CACHE.caches = RawCaches()  # registered by its module; its series need caches
    sys.stdout.write(generate_latest().decode())


if __name__ == "__main__":
    _print_every_family()
