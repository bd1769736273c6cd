"""The Prometheus alert rules (deploy/prometheus/alerts.yml): valid, unit-tested, documented.

``promtool check rules`` and ``promtool check config`` validate them; ``promtool test rules``
runs deploy/prometheus/alerts.test.yml, where every alert fires on series that should page
and stays silent on series that should not. A rule broken on purpose makes those unit tests
fail, so they are not vacuous. docs/alerts.md has a runbook section for every alert.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.exposition import exposed_names
from tests.unit.deploy.promtool import promtool, run_promtool

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
RUNBOOK = REPO / "docs" / "alerts.md"

REQUIRED = {
    "TenureTargetDown",
    "TenureJobAbsent",
    "TenureIngestServerErrors",
    "TenureIngestUnavailable",
    "TenureConsumerLagGrowing",
    "TenureDeadLetters",
    "TenureArchiverStalled",
    "TenureProjectorBacklog",
    "TenureFollowBehind",
    "TenureProjectorSlow",
    "TenureProjectionStale",
    "TenurePersonViewsLate",
}
"""Issue 12: consumer lag growing, projector backlog and freshness, dead letters, ingest 5xx
and 503, archiver stalled, target down."""


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in _load(ALERTS)["groups"] for r in g["rules"] if "alert" in r}


def test_promtool_check_rules() -> None:
    output = promtool("check", "rules", str(ALERTS))
    assert f"SUCCESS: {len(_rules())} rules found" in output


def test_prometheus_config_loads_the_rules() -> None:
    config = _load(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    output = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "1 rule files found" in output


def test_compose_mounts_the_rules_next_to_the_config() -> None:
    prometheus = _load(REPO / "docker-compose.yml")["services"]["prometheus"]
    config = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_dir = Path(config.removeprefix("--config.file=")).parent
    mounts = {
        (REPO / v.split(":")[0]).resolve(): Path(v.split(":")[1]) for v in prometheus["volumes"]
    }
    assert mounts[ALERTS.resolve()] == config_dir / "alerts.yml"


def test_the_issue_s_alerts_exist() -> None:
    assert set(_rules()) == REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_alert_has_for_severity_annotations_and_a_runbook_section(name: str) -> None:
    rule = _rules()[name]
    assert re.fullmatch(r"\d+[smh]", rule["for"]), rule.get("for")
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["runbook_url"] == f"docs/alerts.md#{name.lower()}"
    assert f"\n## {name}\n" in RUNBOOK.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_alert_names_only_metrics_tenure_exposes(name: str) -> None:
    expr = _rules()[name]["expr"]
    functions = {"rate", "increase", "delta", "sum", "max", "absent", "histogram_quantile"}
    keywords = {"by", "on", "and", "or", "unless", "offset", "time", "le", "bool"}
    names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?=\s*[{\[)\s]|$)", expr))
    labels = {"job", "instance", "group", "topic", "worker", "category", "kind", "status", "part"}
    metrics = names - functions - keywords - labels
    assert metrics, expr
    unknown = metrics - exposed_names()
    assert not unknown, f"{name}: {sorted(unknown)} are not exposed by any Tenure process"


def _alert_cases() -> dict[str, dict[str, int]]:
    """Per alert: how many evaluations expect it firing and how many expect it silent."""
    cases: dict[str, dict[str, int]] = {}
    for group in _load(ALERT_TESTS)["tests"]:
        for check in group["alert_rule_test"]:
            outcome = "firing" if check["exp_alerts"] else "silent"
            counts = cases.setdefault(check["alertname"], {"firing": 0, "silent": 0})
            counts[outcome] += 1
    return cases


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases = _alert_cases()
    assert set(cases) == REQUIRED
    for name, counts in cases.items():
        assert counts["firing"] and counts["silent"], f"{name}: {counts}"


def test_promtool_test_rules() -> None:
    output = promtool("test", "rules", str(ALERT_TESTS))
    assert "SUCCESS" in output


@pytest.mark.parametrize(
    ("alert", "broken"),
    [
        ("TenureTargetDown", ("== 0", "== 1")),
        ("TenureDeadLetters", ("< 600", "< 0")),
        ("TenureArchiverStalled", ('{group="tenure-archiver"}', '{group="tenure-projector"}')),
        ("TenureIngestServerErrors", (',status!="503"', "")),
        ("TenurePersonViewsLate", ('{kind="person"}', "")),
        ("TenureFollowBehind", ("max by (part) (tenure", "sum by (part) (tenure")),
        ("TenureFollowBehind", (">= 0", "> -1000000")),
    ],
    ids=[
        "target-down-inverted",
        "dead-letters-young-process",
        "archiver-group",
        "5xx-with-503",
        "views-late-any-kind",
        "follow-behind-summed-over-replicas",
        "follow-behind-while-draining",
    ],
)
def test_the_rule_tests_catch_a_broken_rule(
    tmp_path: Path, alert: str, broken: tuple[str, str]
) -> None:
    rules = _load(ALERTS)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                assert broken[0] in rule["expr"]
                rule["expr"] = rule["expr"].replace(*broken)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    shutil.copy(ALERT_TESTS, tmp_path / "alerts.test.yml")
    done = run_promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert f"alertname: {alert}" in done.stdout + done.stderr
