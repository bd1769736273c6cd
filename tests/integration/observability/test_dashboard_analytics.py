"""The dashboard's survival, retention and milestone charts equal the analytics API.

DEPENDS ON THE ANALYTICS BRANCH (issue 4): the query service must serve ``/v1/tenure/*``
(``services/query/survival*.py``). Without that module these tests are skipped with that
reason; once it is merged they run against the same observed platform as the other
dashboard tests, in the same headless Chromium.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.integration.observability.browser import Page
from tests.integration.observability.conftest import OUTPUT, Observed
from tests.integration.observability.test_dashboard_page import open_dashboard, summary

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(
    not list((ROOT / "services" / "query").glob("survival*.py")),
    reason="needs the analytics API (services/query/survival*.py, issue 4) merged",
)
ENTRY = "entry:connected_buyer,entry:one_time_buyer,entry:non_paying_user"
NAMES = {
    "entry:connected_buyer": "connected buyers",
    "entry:one_time_buyer": "one-time buyers",
    "entry:non_paying_user": "non-paying users",
    "all": "everyone",
}


def _same(drawn: list[list[float]], expected: list[tuple[float, ...]]) -> bool:
    return len(drawn) == len(expected) and all(
        len(d) == len(e)
        and all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(d, e, strict=True))
        for d, e in zip(drawn, expected, strict=True)
    )


def test_summary_says_the_analytics_api_is_served(observed: Observed) -> None:
    assert summary(observed)["analytics"] == dict.fromkeys(
        ("survival", "retention", "activation", "conversion", "repeat"), True
    )


def test_survival_retention_and_milestone_charts_match_the_api(observed: Observed) -> None:
    with Page() as page:
        charts = open_dashboard(observed, page)
        page.pump(0.5)
        page.screenshot(OUTPUT / "dashboard-analytics.png")
        errors = list(page.errors)
        medians = page.evaluate("document.getElementById('medians').innerText")
    assert errors == []
    survival = observed.api("/v1/tenure/survival", ENTRY)
    drawn = {s["name"]: s["data"] for s in charts["survival"]}
    assert len(survival["groups"]) == 3
    for group in survival["groups"]:
        name = NAMES[group["group"]]
        curve = group["curve"]
        assert curve, group["group"]
        assert _same(drawn[name], [(p["day"], p["survival"]) for p in curve])
        band = [(p["day"], p["ci_low"], p["ci_high"]) for p in curve]
        assert _same(drawn[f"{name} CI"], band)
        assert name in medians and str(group["n"]) in medians
    retention = observed.api("/v1/tenure/retention", "all")
    cells = sorted(
        (x, y, share)
        for y, cohort in enumerate(retention["groups"][0]["cohorts"])
        for x, share in enumerate(cohort["on"])
    )
    assert cells and sorted(tuple(c) for c in charts["retention"][0]["data"]) == cells
    for which in ("activation", "conversion"):
        result = observed.api(f"/v1/tenure/{which}", "all")
        lines = {s["name"]: s["data"] for s in charts[which]}
        for group in result["groups"]:
            expected = [(p["day"], p["share"]) for p in group["curve"]]
            assert _same(lines[NAMES.get(group["group"], group["group"])], expected)
