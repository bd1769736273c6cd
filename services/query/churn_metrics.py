"""Prometheus gauges of the churn backtest (calibration by decile, AUC, Brier, people scored)
and of the care list (persons not churned whose ``churn_risk`` reaches the care threshold).

The backtest (``tenure.analytics.churn_backtest``, the same as ``/v1/churn/calibration``)
reads every person's engagement days, so it is not rerun per scrape: a result is reused for
``cost_factor`` times as long as it took to compute (at least ``min_interval_s``), so the
gauges cost at most about 1/``cost_factor`` of a core however large the population (a
small demo refreshes every second, a million people every few minutes). Labels: the decile
number (1-10) only, never a person id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, timedelta
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
from psycopg_pool import ConnectionPool

from services.query.pool_gauges import PoolGauges
from tenure.analytics.churn_backtest import Backtest, backtest
from tenure.analytics.churn_risk import CARE_THRESHOLD
from tenure.storage import churn_model
from tenure.storage import survival_reads as reader
from tenure.storage.churn_risk import count_at_least
from tenure.storage.connection import read_only_snapshot

__all__ = ["ChurnCollector", "attach_churn_gauges", "families"]

log = logging.getLogger(__name__)

_DOCS: dict[str, str] = {
    "tenure_churn_backtest_people": "People the churn backtest scored (not churned W days ago)",
    "tenure_churn_backtest_auc": "AUC of the churn probability in the backtest (W days ago)",
    "tenure_churn_backtest_brier": "Brier score of the churn probability in the backtest",
    "tenure_churn_calibration_predicted_ratio": "Backtest: mean predicted P(silent W days), "
    "per decile of prediction",
    "tenure_churn_calibration_observed_ratio": "Backtest: observed share silent W days, "
    "per decile of prediction",
    "tenure_churn_care_persons": "Persons not churned whose churn_risk is at least the care "
    "threshold (0.5) at the aggregates' as-of",
}
_PER_DECILE = (
    "tenure_churn_calibration_predicted_ratio",
    "tenure_churn_calibration_observed_ratio",
)


def families(result: Backtest | None, care: int | None = None) -> list[Metric]:
    """The gauge families of one backtest and care count (empty families without them)."""
    out = {
        name: GaugeMetricFamily(name, doc, labels=["decile"] if name in _PER_DECILE else [])
        for name, doc in _DOCS.items()
    }
    if care is not None:
        out["tenure_churn_care_persons"].add_metric([], care)
    if result is not None:
        out["tenure_churn_backtest_people"].add_metric([], result.people)
        if result.auc is not None:
            out["tenure_churn_backtest_auc"].add_metric([], result.auc)
        if result.brier is not None:
            out["tenure_churn_backtest_brier"].add_metric([], result.brier)
        for n, row in enumerate(result.deciles, start=1):
            out[_PER_DECILE[0]].add_metric([str(n)], row.mean_prediction)
            out[_PER_DECILE[1]].add_metric([str(n)], row.observed_rate)
    return list(out.values())


class ChurnCollector(PoolGauges):
    """Publishes the cached backtest at the aggregates' as-of instant."""

    def __init__(self, min_interval_s: float = 1.0, cost_factor: float = 20.0) -> None:
        self.min_interval_s = min_interval_s
        self.cost_factor = cost_factor
        self._lock = threading.Lock()
        self._cached: tuple[float, Backtest | None, int | None] | None = None
        """When the cached result may be replaced, the backtest and the care count."""

    def _run(self, conn: psycopg.Connection[Any]) -> tuple[Backtest | None, int | None]:
        state = reader.aggregate_state(conn)
        if state.as_of is None:
            return None, None
        day, window = state.as_of.astimezone(UTC).date(), state.churn_window_days
        table = churn_model.read_risk_table(conn, day, window)
        cutoffs = table.last_day_cutoffs(CARE_THRESHOLD)
        care = count_at_least(conn, cutoffs, day - timedelta(days=window))
        return backtest(churn_model.read_histories(conn), day, window), care

    def describe(self) -> Iterable[Metric]:
        """The metric names, without reading the database (used at registration)."""
        return families(None)

    def collect(self) -> Iterable[Metric]:
        """The backtest, recomputed once the cached one is due; nothing on errors."""
        if self.pool is None:
            return []
        with self._lock:
            started = time.monotonic()
            if self._cached is None or started >= self._cached[0]:
                try:
                    with self.pool.connection(timeout=5) as conn, read_only_snapshot(conn):
                        result, care = self._run(conn)
                except (psycopg.Error, OSError) as exc:
                    log.warning("churn gauges unavailable: %s", exc)
                    return []
                took = time.monotonic() - started
                due = started + max(self.min_interval_s, self.cost_factor * took)
                self._cached = (due, result, care)
            return families(self._cached[1], self._cached[2])


_collector = ChurnCollector()


def attach_churn_gauges(pool: ConnectionPool) -> ChurnCollector:
    """Register the collector once in the default registry and point it at ``pool``."""
    return _collector.attach(pool)
