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
