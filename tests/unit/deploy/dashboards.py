"""Reading the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCES = {"prometheus": "prometheus", "tenure-postgres": "grafana-postgresql-datasource"}
"""The provisioned datasources: uid -> plugin type."""
VARIABLES = {"prometheus": "DS_PROMETHEUS", "grafana-postgresql-datasource": "DS_TENURE_POSTGRES"}
"""The dashboards' datasource template variable (and import input) per plugin type."""


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel."""

    dashboard: str
    panel: str
    ref: str
    language: str  # promql | sql
    text: str

    @property
    def id(self) -> str:
        """A readable test id."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.panel.lower()).strip("-")
        return f"{self.dashboard}:{slug}:{self.ref}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that queries (rows excluded)."""
    return [p for p in board["panels"] if p.get("type") != "row"]


def dashboard_queries() -> list[PanelQuery]:
    """Every query of every dashboard panel."""
    found = []
    for stem, board in load_dashboards().items():
        for panel in panels(board):
            for target in panel["targets"]:
                promql = target["datasource"]["type"] == "prometheus"
                text = target["expr"] if promql else target["rawSql"]
                language = "promql" if promql else "sql"
                found.append(PanelQuery(stem, panel["title"], target["refId"], language, text))
    return found
