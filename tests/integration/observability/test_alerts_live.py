"""The production alert rules, evaluated by the real Prometheus on the observed run.

The observed Prometheus loads deploy/prometheus/alerts.yml. Every rule evaluates without an
error against the real metrics; the dead letters the run sent raise TenureDeadLetters for
the workers that parked them, while the alerts of a healthy run stay inactive.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import skip_tier
from tests.integration.observability.conftest import PROMETHEUS_MISSING, Observed
from tests.unit.deploy.test_alert_rules import REQUIRED

HEALTHY_RUN_QUIET = {
    "TenureTargetDown",
    "TenureJobAbsent",
    "TenureIngestServerErrors",
    "TenureIngestUnavailable",
    "TenureArchiverStalled",
    "TenureProjectionStale",
}
"""Alerts a run with every process up and nothing stuck must not raise."""


def _alerting_rules(observed: Observed) -> dict[str, dict[str, Any]]:
    if not observed.prometheus_url:
        skip_tier("prometheus", PROMETHEUS_MISSING)
    reply = httpx.get(f"{observed.prometheus_url}/api/v1/rules", timeout=10).json()
    assert reply["status"] == "success", reply
    return {
        rule["name"]: rule
        for group in reply["data"]["groups"]
        for rule in group["rules"]
        if rule["type"] == "alerting"
    }


def test_every_rule_is_loaded_and_evaluates_without_error(observed: Observed) -> None:
    rules = _alerting_rules(observed)
    assert set(rules) == REQUIRED
    for name, rule in rules.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
        assert rule["lastEvaluation"] != "0001-01-01T00:00:00Z", name


def test_the_runs_dead_letters_raise_the_dead_letter_alert(observed: Observed) -> None:
    rules = _alerting_rules(observed)
    alerts = rules["TenureDeadLetters"]["alerts"]
    raised = {(a["labels"]["worker"], a["labels"]["severity"]) for a in alerts}
    # the run parks malformed and unknown-type records from the SDK topic and a broken record
    # on a canonical topic (tests/integration/observability/conftest.py)
    assert {("sdk-validator", "warning"), ("archiver", "warning")} <= raised, alerts
    assert all(a["state"] in {"pending", "firing"} for a in alerts)


def test_a_healthy_run_raises_no_outage_alert(observed: Observed) -> None:
    rules = _alerting_rules(observed)
    for name in HEALTHY_RUN_QUIET:
        # Pending is the rule's `for:` window at work (e.g. the first minute, before the
        # projector's first batch on a loaded machine); a healthy run never fires.
        firing = [a for a in rules[name]["alerts"] if a["state"] == "firing"]
        assert firing == [], (name, rules[name]["alerts"])
