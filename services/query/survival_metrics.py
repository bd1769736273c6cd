"""Prometheus gauges of the survival analytics, read from the live aggregates per scrape.

Labels are group selectors only (``all`` and the entry paths): never a person id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import UTC
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
from psycopg_pool import ConnectionPool

from services.query.pool_gauges import PoolGauges
from tenure.analytics.curves import rate_within
from tenure.analytics.kaplan_meier import kaplan_meier
from tenure.analytics.summaries import median_survival
from tenure.analytics.survival_contribution import ACTIVATION, CONVERSION, REPEAT
from tenure.domain.view import DEFAULT_CONFIG, ENTRY_PATHS
from tenure.storage import survival_reads as reader
from tenure.storage.connection import read_only_snapshot

__all__ = ["COMPARISON_GROUPS", "SurvivalCollector", "attach_survival_gauges"]

log = logging.getLogger(__name__)

COMPARISON_GROUPS: tuple[str, ...] = ("all", *(f"entry:{p}" for p in ENTRY_PATHS))
"""The groups the gauges are published for."""

SECONDS_PER_DAY = 86400
"""Tenure is counted in whole days; the median gauge is in seconds, Prometheus' base unit."""

_RATES: tuple[tuple[str, str, str, int], ...] = (
    (
        "tenure_activation_rate",
        "Share of buyers who activated a device within A days (among buyers watched A days)",
        ACTIVATION,
        DEFAULT_CONFIG.activation_window_days,
    ),
    (
        "tenure_conversion_rate",
        "Share of non-paying users who paid within 90 days (among users watched 90 days)",
        CONVERSION,
        90,
    ),
    (
        "tenure_repeat_purchase_rate",
        "Share of customers with a second paid order within 90 days (among those watched 90)",
        REPEAT,
        90,
    ),
)


class SurvivalCollector(PoolGauges):
    """Collects people per group, median tenure per group and milestone rates."""

    def _families(self, conn: psycopg.Connection[Any]) -> list[Metric]:
        people = GaugeMetricFamily(
            "tenure_survival_people", "People with an active tenure, per comparison group",
            labels=["group"],
        )  # fmt: skip
        median = GaugeMetricFamily(
            "tenure_survival_median_seconds",
            "Kaplan-Meier median active tenure per comparison group, in seconds (whole days;"
            " absent: not reached)",
            labels=["group"],
        )
        rates = {name: GaugeMetricFamily(name, doc, labels=["group"]) for name, doc, *_ in _RATES}
        state = reader.aggregate_state(conn)
        if state.as_of is None:
            return [people, median, *rates.values()]
        day = state.as_of.astimezone(UTC).date()
        for group in COMPARISON_GROUPS:
            table = reader.tenure_table(conn, group, day, state)
            people.add_metric([group], table.n)
            if table.n:
                m = median_survival(kaplan_meier(table)).median
                if not math.isinf(m):
                    median.add_metric([group], m * SECONDS_PER_DAY)
            for name, _, kind, window in _RATES:
                share = rate_within(reader.milestone_table(conn, kind, group, day), window).share
                if share is not None:
                    rates[name].add_metric([group], share)
        return [people, median, *rates.values()]

    def describe(self) -> Iterable[Metric]:
        """The metric names, without reading the database (used at registration)."""
        return [
            GaugeMetricFamily(name, doc, labels=["group"])
            for name, doc in (
                ("tenure_survival_people", "People with an active tenure"),
                ("tenure_survival_median_seconds", "Median active tenure in seconds"),
                *((name, doc) for name, doc, *_ in _RATES),
            )
        ]

    def collect(self) -> Iterable[Metric]:
        """One consistent read of the aggregates per scrape; nothing on database errors."""
        if self.pool is None:
            return []
        try:
            with self.pool.connection(timeout=5) as conn, read_only_snapshot(conn):
                return self._families(conn)
        except (psycopg.Error, OSError) as exc:
            log.warning("survival gauges unavailable: %s", exc)
            return []


_collector = SurvivalCollector()


def attach_survival_gauges(pool: ConnectionPool) -> SurvivalCollector:
    """Register the collector once in the default registry and point it at ``pool``."""
    return _collector.attach(pool)
