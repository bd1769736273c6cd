"""The Grafana provisioning and dashboards are well-formed and use what really exists."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.unit.deploy.dashboards import (
    DASHBOARDS,
    DATASOURCES,
    ROOT,
    VARIABLES,
    dashboard_queries,
    load_dashboards,
    panels,
)
from tests.unit.deploy.exposition import exposed_names


def test_three_dashboards_with_unique_uids_and_titles() -> None:
    boards = load_dashboards()
    assert set(boards) == {"customers-vs-users", "tenure", "pipeline-health"}
    assert len({b["uid"] for b in boards.values()}) == 3
    for board in boards.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        assert panels(board)


def _datasource_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``datasource`` reference anywhere in a dashboard (panels, targets, ...)."""
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for value in node.values():
            yield from _datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasource_refs(value)


def test_every_panel_uses_a_datasource_variable_of_its_type() -> None:
    """No fixed uid: ``${DS_...}`` variables, so an imported dashboard asks for datasources."""
    for stem, board in load_dashboards().items():
        refs = list(_datasource_refs(board["panels"]))
        assert len(refs) > len(panels(board)), stem  # panels and their targets
        for ref in refs:
            assert ref == {"type": ref["type"], "uid": f"${{{VARIABLES[ref['type']]}}}"}, stem
        for panel in panels(board):
            for target in panel["targets"]:
                assert target["datasource"]["type"] == panel["datasource"]["type"], stem


def test_datasource_variables_default_to_the_provisioned_datasources() -> None:
    """Provisioning: each variable resolves to the datasource the provisioning creates."""
    provisioned = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/datasources.yml").read_text()
    )
    by_uid = {d["uid"]: d for d in provisioned["datasources"]}
    assert {uid: d["type"] for uid, d in by_uid.items()} == DATASOURCES
    for stem, board in load_dashboards().items():
        used = {ref["type"] for ref in _datasource_refs(board["panels"])}
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert set(variables) == {VARIABLES[kind] for kind in used}, stem
        for kind in used:
            variable = variables[VARIABLES[kind]]
            assert (variable["type"], variable["query"]) == ("datasource", kind), stem
            default = by_uid[variable["current"]["value"]]
            assert (default["type"], default["name"]) == (kind, variable["current"]["text"])


def test_import_inputs_declare_every_datasource_variable() -> None:
    """Import dashboard: Grafana asks for each ``__inputs`` datasource and substitutes it."""
    for stem, board in load_dashboards().items():
        used = {ref["type"] for ref in _datasource_refs(board["panels"])}
        inputs = {i["name"]: i for i in board["__inputs"]}
        assert set(inputs) == {VARIABLES[kind] for kind in used}, stem
        for kind in used:
            assert inputs[VARIABLES[kind]]["type"] == "datasource"
            assert inputs[VARIABLES[kind]]["pluginId"] == kind
        required = {(r["type"], r["id"]) for r in board["__requires"]}
        assert {("datasource", kind) for kind in used} <= required, stem
        assert {("panel", p["type"]) for p in panels(board)} <= required, stem
        # no literal provisioned uid survives anywhere that import would not substitute
        text = json.dumps(board["panels"])
        for uid in DATASOURCES:
            assert f'"uid": "{uid}"' not in text, stem


def test_promql_names_only_metrics_the_processes_expose() -> None:
    exposed = exposed_names()
    for query in dashboard_queries():
        if query.language != "promql":
            continue
        for name in re.findall(r"\b(tenure_[a-z_]+|up)\b", query.text):
            assert name in exposed, f"{query.id}: {name} is not exposed by any process"


def test_sql_panels_use_no_grafana_macros_and_name_no_person_ids() -> None:
    for query in dashboard_queries():
        if query.language != "sql":
            continue
        assert "$" not in query.text, query.id
        assert "person_id" not in query.text and "device_id" not in query.text, query.id


def _relations_read(sql: str) -> set[str]:
    """Tables and views a query reads (FROM / JOIN targets that are not its own CTEs)."""
    sql = re.sub(r"extract\(\w+ FROM", "extract(", sql)
    ctes = set(re.findall(r"\b([a-z_][a-z0-9_]*)(?:\([^)]*\))? AS \(", sql))
    named = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)", sql))
    return named - ctes - {"lateral"}


def test_sql_panels_read_relations_the_migrations_create() -> None:
    created: set[str] = set()
    for migration in sorted((ROOT / "tenure/storage/sql").glob("*.sql")):
        created |= set(re.findall(r"CREATE (?:TABLE|VIEW) ([a-z_]+)", migration.read_text()))
    for query in dashboard_queries():
        if query.language == "sql":
            read = _relations_read(query.text)
            assert read and read <= created, f"{query.id}: {sorted(read - created)} do not exist"


def test_tenure_dashboard_reads_the_live_aggregates() -> None:
    """Survival, retention and milestone counts come from the aggregates, not a persons scan."""
    read: dict[str, set[str]] = {}
    for query in dashboard_queries():
        if query.dashboard == "tenure" and query.language == "sql":
            read[query.panel] = _relations_read(query.text)
    survival = [p for p in read if p.startswith(("Survival by", "Median tenure"))]
    assert len(survival) == 3
    assert all(read[p] == {"survival_tenure_now"} for p in survival)
    retention = [p for p in read if p.startswith("Weekly cohort retention")]
    assert len(retention) == 2 and all(read[p] == {"retention_matrix"} for p in retention)
    assert {"milestone_counts"} in read.values()


def test_provisioning_loads_the_dashboards_folder_that_compose_mounts() -> None:
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert DASHBOARDS.is_dir()


COUNTED_IN_POSTGRES = (
    "tenure_projector_backlog",
    "tenure_projector_raw_deltas",
    "tenure_projector_follow_backlog",
    "tenure_audience_members",
)
"""Gauges every replica of a stage sets to the same count, read from Postgres: summed over
replicas they would double with two projectors."""


def test_gauges_counted_in_postgres_are_not_summed_over_replicas() -> None:
    used = [
        q
        for q in dashboard_queries()
        if q.language == "promql" and any(name in q.text for name in COUNTED_IN_POSTGRES)
    ]
    assert {name for name in COUNTED_IN_POSTGRES if any(name in q.text for q in used)} >= {
        "tenure_projector_backlog",
        "tenure_projector_follow_backlog",
        "tenure_audience_members",
    }
    for query in used:
        assert not re.search(r"\bsum\b", query.text), (query.dashboard, query.panel, query.text)
