"""Every query of the provisioned Grafana dashboards returns data from the real stack.

PromQL: evaluated by the real Prometheus server that scraped the running platform (at the
moment just after the load and the replay). SQL: run against the platform's Postgres after
the projection of the simulated population.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import psycopg
import pytest

from tenure.analytics.kaplan_meier import KaplanMeierCurve, kaplan_meier
from tenure.analytics.lifetable import LifeTable
from tenure.analytics.summaries import median_survival
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


GROUPS: dict[str, tuple[str, str] | None] = {
    "everyone": None,
    "connected buyers": ("entry_path", "connected_buyer"),
    "one-time buyers": ("entry_path", "one_time_buyer"),
    "non-paying users": ("entry_path", "non_paying_user"),
    "customer and user (segment)": ("segment", "customer_and_user"),
    "customer only (segment)": ("segment", "customer_only"),
    "user only (segment)": ("segment", "user_only"),
}
"""The Tenure dashboard's group names and the persons column and value each one selects."""

TENURE_SQL = [q for q in SQL if q.dashboard == "tenure"]
SURVIVAL_CURVES = [q for q in TENURE_SQL if q.panel.startswith("Survival by")]


def _curves_from_persons(conn: psycopg.Connection[Any]) -> dict[str, KaplanMeierCurve]:
    """Kaplan-Meier per dashboard group by tenure.analytics from the persons rows (not from
    the aggregates): tenure_days, churned when silent for the window at survival_state.as_of."""
    rows = conn.execute(
        "SELECT p.entry_path, p.segment, p.tenure_days, p.stage = 'churned'"
        " OR (s.as_of AT TIME ZONE 'UTC')::date - (p.last_engagement_at AT TIME ZONE 'UTC')::date"
        " >= s.churn_window_days FROM persons p CROSS JOIN survival_state s"
        " WHERE p.first_engagement_at IS NOT NULL AND p.last_engagement_at IS NOT NULL"
    ).fetchall()
    observed: dict[str, list[tuple[int, bool]]] = {name: [] for name in GROUPS}
    for entry, segment, days, churned in rows:
        columns = {"entry_path": entry, "segment": segment}
        for name, cut in GROUPS.items():
            if cut is None or columns[cut[0]] == cut[1]:
                observed[name].append((days, churned))
    return {
        name: kaplan_meier(LifeTable.from_durations([d for d, _ in obs], [e for _, e in obs]))
        for name, obs in observed.items()
        if obs
    }


def _groups_of(query: PanelQuery, curves: dict[str, KaplanMeierCurve]) -> set[str]:
    return {name for name in curves if f"'{name}'" in query.text}


@pytest.mark.parametrize("panel", SURVIVAL_CURVES, ids=[q.id for q in SURVIVAL_CURVES])
def test_survival_panel_equals_the_python_kaplan_meier(
    observed: Observed, panel: PanelQuery
) -> None:
    """The SQL Kaplan-Meier over survival_tenure_now equals tenure.analytics (lifelines') on
    the persons rows: the whole timeline, at risk, survival and band."""
    with psycopg.connect(observed.database_url) as conn:
        drawn = conn.execute(panel.text).fetchall()  # type: ignore[arg-type]
        curves = _curves_from_persons(conn)
    by_group: dict[str, list[tuple[Any, ...]]] = {}
    for group, *row in drawn:
        by_group.setdefault(group, []).append(tuple(row))
    assert set(by_group) == _groups_of(panel, curves) and len(by_group) > 1
    for group, points in by_group.items():
        curve = curves[group]
        assert [p[0] for p in points] == list(curve.days), group
        for (_, survival, low, high, at_risk), point in zip(points, curve.points, strict=True):
            assert at_risk == point.at_risk
            assert survival == pytest.approx(point.survival, abs=1e-9)
            assert low == pytest.approx(point.ci_low, abs=1e-9)
            assert high == pytest.approx(point.ci_high, abs=1e-9)


def test_median_tenure_panel_equals_the_python_median(observed: Observed) -> None:
    (panel,) = [q for q in TENURE_SQL if q.panel.startswith("Median tenure")]
    with psycopg.connect(observed.database_url) as conn:
        drawn = conn.execute(panel.text).fetchall()  # type: ignore[arg-type]
        curves = _curves_from_persons(conn)
    assert {row[0] for row in drawn} == _groups_of(panel, curves)
    reached = 0
    for group, people, churned, still_active, median_days in drawn:
        curve = curves[group]
        assert (people, churned, still_active) == (
            curve.n,
            sum(curve.events),
            sum(curve.censored),
        ), group
        median = median_survival(curve).median
        assert median_days == (None if math.isinf(median) else median), group
        reached += median_days is not None
    assert reached, "no group reached its median: the check compared only nulls"


RETENTION = [q for q in TENURE_SQL if q.panel.startswith("Weekly cohort retention")]


@pytest.mark.parametrize("panel", RETENTION, ids=[q.id for q in RETENTION])
def test_retention_panel_equals_the_analytics_api(observed: Observed, panel: PanelQuery) -> None:
    """Every cell of the retention_matrix panels equals /v1/tenure/retention (group all)."""
    share = "on_or_after" if "or later" in panel.panel else "on"
    with psycopg.connect(observed.database_url) as conn:
        drawn = conn.execute(panel.text).fetchall()  # type: ignore[arg-type]
    (group,) = observed.api("/v1/tenure/retention", "all")["groups"]
    expected = {
        (f"{c['cohort']} ({c['size']})", week): value
        for c in group["cohorts"]
        for week, value in enumerate(c[share])
    }
    assert {(cohort, week) for cohort, week, _ in drawn} == set(expected)
    for cohort, week, retained in drawn:
        assert float(retained) == pytest.approx(expected[(cohort, week)], abs=5e-4)


def test_milestone_panel_equals_the_analytics_api(observed: Observed) -> None:
    """Started and reached per milestone and group equal the API's n and count."""
    (panel,) = [q for q in TENURE_SQL if q.panel.startswith("Milestones reached")]
    with psycopg.connect(observed.database_url) as conn:
        drawn = conn.execute(panel.text).fetchall()  # type: ignore[arg-type]
    names = {"all": "everyone"} | {
        f"{cut[0].removesuffix('_path')}:{cut[1]}": name
        for name, cut in GROUPS.items()
        if cut is not None and cut[0] == "entry_path"
    }
    expected = {}
    for kind in ("activation", "conversion", "repeat"):
        for group in observed.api(f"/v1/tenure/{kind}", ",".join(names))["groups"]:
            if group["n"]:
                expected[(kind, names[group["group"]])] = (group["n"], group["count"])
    assert {(kind, group) for kind, group, *_ in drawn} == set(expected)
    assert {kind for kind, *_ in drawn} == {"activation", "conversion", "repeat"}
    for kind, group, started, reached, share in drawn:
        assert (started, reached) == expected[(kind, group)]
        assert float(share) == pytest.approx(reached / started, abs=5e-4)
