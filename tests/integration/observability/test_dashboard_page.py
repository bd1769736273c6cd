"""The built-in dashboard in a real headless Chromium, against the observed platform.

The query service of the running platform serves the page; the page reads its read token
from the URL fragment and polls the JSON API. The test reads the charts' data back out of
ECharts and compares it with the API and with Postgres; the console must stay clean.
A screenshot is saved under tests/artifacts (TENURE_TEST_OUTPUT).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import psycopg

from tests.integration.observability.browser import Page
from tests.integration.observability.conftest import OUTPUT, Observed

SEGMENTS = ["customer_and_user", "customer_only", "user_only", "prospect"]
STAGES = ["none", "new", "active", "at_risk", "churned", "resurrected"]
LEVELS = ["none", "micro", "weak", "strong", "super"]

CHART_DATA = """
JSON.stringify(Object.fromEntries(Object.entries(window.tenureDashboard.charts).map(
  ([name, chart]) => [name, chart.getOption().series.map((s) => ({
    name: s.name, type: s.type, data: s.data}))])))
"""


def summary(observed: Observed) -> dict[str, Any]:
    """The dashboard summary as the API answers it."""
    reply = httpx.get(
        f"{observed.status['query_url']}/v1/dashboard/summary",
        headers={"Authorization": f"Bearer {observed.read_token}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def open_dashboard(observed: Observed, page: Page, refreshes: int = 2) -> dict[str, Any]:
    """Load the page with the token in the fragment; wait for refreshes; return chart data."""
    import json

    page.navigate(f"{observed.status['query_url']}/dashboard#token={observed.read_token}&refresh=1")
    page.wait_for(
        f"window.tenureDashboard && window.tenureDashboard.refreshes >= {refreshes}", timeout=60
    )
    charts: dict[str, Any] = json.loads(page.evaluate(CHART_DATA))
    return charts


def test_summary_endpoint_needs_a_read_token_and_counts_the_read_model(observed: Observed) -> None:
    url = f"{observed.status['query_url']}/v1/dashboard/summary"
    assert httpx.get(url, timeout=10).status_code == 401
    body = summary(observed)
    with psycopg.connect(observed.database_url) as conn:
        segments = dict(conn.execute("SELECT segment, count(*) FROM persons GROUP BY 1").fetchall())
        archived = conn.execute("SELECT max(seq) FROM event_archive").fetchone()
    assert {k: v for k, v in body["segments"].items() if v} == segments
    assert body["persons"] == sum(segments.values()) > 0
    assert sum(body["stages"].values()) == body["persons"] == sum(body["tiers"].values())
    assert archived is not None and body["pipeline"]["archived_events"] == archived[0]
    steps = [s["count"] for s in body["funnels"]["activation"]]
    assert steps == sorted(steps, reverse=True) and steps[0] > 0
    assert body["pipeline"]["last_replay"]["events"] > 0


def test_tenure_up_prints_the_dashboard_url_with_a_read_token(observed: Observed) -> None:
    log = observed.up_log.read_text()
    printed = re.search(r"dashboard\s+(http://\S+/dashboard#token=(tnr_\S+))", log)
    assert printed, log[-2000:]
    assert printed.group(1) == observed.status["dashboard_url"]
    reply = httpx.get(
        f"{observed.status['query_url']}/v1/dashboard/summary",
        headers={"Authorization": f"Bearer {printed.group(2)}"},
        timeout=10,
    )
    assert reply.status_code == 200
    page = httpx.get(printed.group(1).split("#")[0], timeout=10)
    assert page.status_code == 200 and "echarts.min.js" in page.text
    assert (
        httpx.get(
            f"{observed.status['query_url']}/dashboard/static/vendor/echarts/echarts.min.js",
            timeout=10,
        )
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )


def test_dashboard_page_charts_match_the_api_with_no_console_errors(observed: Observed) -> None:
    api = summary(observed)
    with Page() as page:
        charts = open_dashboard(observed, page)
        page.pump(0.5)  # let the last frame render before the screenshot
        page.screenshot(OUTPUT / "dashboard.png")
        errors = list(page.errors)
        seen = page.evaluate("JSON.stringify(window.tenureDashboard.data.summary)")
        kpis = page.evaluate("document.getElementById('kpis').innerText")
        status = page.evaluate("document.getElementById('status').innerText")
    assert errors == []
    assert "updated" in status
    assert seen is not None
    assert charts["segments"][0]["data"] == [api["segments"][s] for s in SEGMENTS]
    assert charts["stages"][0]["data"] == [api["stages"][s] for s in STAGES]
    assert charts["levels"][0]["data"] == [api["levels"][s] for s in LEVELS]
    assert charts["tiers"][0]["data"] == [api["tiers"][t] for t in sorted(api["tiers"])]
    for name in ("activation", "conversion"):
        drawn = [(d["name"], d["value"]) for d in charts[f"{name}-funnel"][0]["data"]]
        assert drawn == [(s["step"], s["count"]) for s in api["funnels"][name]]
    sizes = {s["name"]: s["data"] for s in charts["audience-sizes"]}
    assert sizes["contactable"] == [a["contactable"] for a in api["audiences"]]
    assert sizes["suppressed: no consent"] == [
        a["suppressed"]["no_consent"] for a in api["audiences"]
    ]
    flows = {s["name"]: s["data"] for s in charts["audience-flows"]}
    assert sum(flows["entered"]) == sum(f["entered"] for f in api["audience_flows"])
    pipeline = {s["name"]: s["data"] for s in charts["pipeline"]}
    assert len(pipeline["archived events/s"]) >= 2  # one point per refresh
    assert str(api["persons"]) in kpis
    assert (OUTPUT / "dashboard.png").stat().st_size > 20_000


def test_dashboard_page_asks_for_a_token_without_one(observed: Observed) -> None:
    with Page(height=800) as page:
        page.navigate(f"{observed.status['query_url']}/dashboard")
        page.wait_for("document.readyState === 'complete'")
        shown = page.wait_for("!document.getElementById('token-form').hidden")
        errors = list(page.errors)
    assert shown and errors == []
