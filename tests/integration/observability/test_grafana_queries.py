"""Every query of the provisioned Grafana dashboards returns data from the real stack.

PromQL: evaluated by the real Prometheus server that scraped the running platform (at the
moment just after the load and the replay). SQL: run against the platform's Postgres after
the projection of the simulated population.
"""

from __future__ import annotations

import math

import httpx
import psycopg
import pytest

from tenure.analytics.kaplan_meier import kaplan_meier
from tenure.analytics.lifetable import LifeTable
from tests.conftest import skip_tier
from tests.integration.observability.conftest import PROMETHEUS_MISSING, Observed
from tests.unit.deploy.dashboards import PanelQuery, dashboard_queries

RATE_INTERVAL = "5m"  # what Grafana's $__rate_interval stands for here: covers the whole run

PROMQL = [q for q in dashboard_queries() if q.language == "promql"]
SQL = [q for q in dashboard_queries() if q.language == "sql"]


@pytest.mark.parametrize("query", PROMQL, ids=[q.id for q in PROMQL])
def test_promql_panel_returns_data(observed: Observed, query: PanelQuery) -> None:
    if not observed.prometheus_url:
        skip_tier("prometheus", PROMETHEUS_MISSING)
    expr = query.text.replace("$__rate_interval", RATE_INTERVAL)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr}"
    reply = httpx.get(
        f"{observed.prometheus_url}/api/v1/query",
        params={"query": expr, "time": f"{observed.evaluated_at:.3f}"},
        timeout=10,
    )
    body = reply.json()
    assert reply.status_code == 200 and body["status"] == "success", body
    result = body["data"]["result"]
    assert result, f"no series for {expr}"
    values = [float(series["value"][1]) for series in result]
    assert any(math.isfinite(v) for v in values), f"only NaN/Inf for {expr}: {values}"


@pytest.mark.parametrize("query", SQL, ids=[q.id for q in SQL])
def test_sql_panel_returns_rows(observed: Observed, query: PanelQuery) -> None:
    with psycopg.connect(observed.database_url) as conn:
        conn.read_only = True
        rows = conn.execute(query.text).fetchall()  # type: ignore[arg-type]
    assert rows, f"no rows for {query.id}"
    assert any(v is not None for row in rows for v in row)


def test_tenure_survival_panel_equals_the_python_kaplan_meier(observed: Observed) -> None:
    """The SQL Kaplan-Meier of the Tenure dashboard equals tenure.analytics (lifelines')."""
    (panel,) = [q for q in SQL if q.panel.startswith("Survival by segment")]
    with psycopg.connect(observed.database_url) as conn:
        drawn = conn.execute(panel.text).fetchall()  # type: ignore[arg-type]
        people = conn.execute(
            "SELECT segment, tenure_days, stage = 'churned' FROM persons "
            "WHERE first_engagement_at IS NOT NULL AND segment <> 'prospect'"
        ).fetchall()
    names = {
        "customer_and_user": "customers who use it",
        "customer_only": "customers who do not use it",
        "user_only": "non-paying users",
    }
    by_group: dict[str, list[tuple[int, bool]]] = {}
    for segment, days, churned in people:
        by_group.setdefault(names[segment], []).append((days, churned))
    expected = {}
    for group, obs in by_group.items():
        curve = kaplan_meier(LifeTable.from_durations([d for d, _ in obs], [e for _, e in obs]))
        for point in curve.points:
            expected[(group, point.day)] = point
    assert len(drawn) >= len(by_group) > 1
    for group, day, survival, low, high, at_risk in drawn:
        point = expected[(group, day)]
        assert at_risk == point.at_risk
        assert float(survival) == pytest.approx(point.survival, abs=1e-4)
        assert float(low) == pytest.approx(point.ci_low, abs=1e-4)
        assert float(high) == pytest.approx(point.ci_high, abs=1e-4)
