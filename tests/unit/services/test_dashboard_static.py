"""The dashboard page's assets are served locally, the vendored library with its licence."""

from __future__ import annotations

import json
import re
from pathlib import Path

from services.query.dashboard import ANALYTICS_ROUTES, STATIC
from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage


def test_page_references_only_local_assets_that_exist() -> None:
    html = (STATIC / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs
    for ref in refs:
        if ref.startswith("data:"):
            continue
        assert ref.startswith("/dashboard/static/"), f"{ref} is not served locally"
        assert (STATIC / ref.removeprefix("/dashboard/static/")).is_file(), ref


def test_vendored_echarts_carries_its_licence_and_version() -> None:
    vendor = STATIC / "vendor" / "echarts"
    assert (vendor / "echarts.min.js").stat().st_size > 500_000
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert "5.6.0" in (vendor / "VERSION").read_text()
    assert 'version="5.6.0"' in (vendor / "echarts.min.js").read_text()


def test_page_script_reads_the_token_from_the_fragment_and_the_contract_routes() -> None:
    script = (STATIC / "dashboard.js").read_text()
    assert "location.hash" in script and "location.search" not in script
    assert "/v1/dashboard/summary" in script
    for name, path in ANALYTICS_ROUTES.items():
        if name != "repeat":
            assert path.rsplit("/", 1)[0] in script


def test_static_folder_is_packaged() -> None:
    pyproject = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    assert "query/dashboard_static/" in pyproject


def test_analytics_routes_are_found_in_included_routers() -> None:
    from fastapi import APIRouter, FastAPI

    from services.query.dashboard import analytics_available

    app = FastAPI()
    router = APIRouter(prefix="/v1/tenure")

    @router.get("/survival")
    def survival() -> dict[str, str]:
        return {}

    assert not any(analytics_available(app).values())
    app.include_router(router)
    app.openapi_schema = None  # as when the app is built with the router already included
    found = analytics_available(app)
    assert found["survival"] and not found["retention"]


def test_the_dashboards_label_lists_are_the_domain_enums() -> None:
    """The page cannot import the enums, so it spells them: exactly, and in their order."""
    script = (STATIC / "dashboard.js").read_text()
    for name, enum in (("SEGMENTS", Segment), ("STAGES", Stage), ("LEVELS", Level)):
        match = re.search(rf"const {name} = (\[[^\]]*\]);", script)
        assert match is not None, name
        assert json.loads(match[1]) == [member.value for member in enum], name


def test_the_audiences_panel_reads_the_summary_and_spells_the_suppression_reasons() -> None:
    from tenure.domain.audience import SUPPRESSION_REASONS

    script = (STATIC / "dashboard.js").read_text()
    html = (STATIC / "index.html").read_text()
    match = re.search(r"const SUPPRESSIONS = (\[[^\]]*\]);", script)
    assert match is not None
    assert json.loads(match[1]) == list(SUPPRESSION_REASONS)
    for name in ("audience-sizes", "audience-flows"):
        assert f'id="chart-{name}"' in html and f'chart("{name}")' in script
    assert "summary.audiences" in script and "summary.audience_flows" in script
