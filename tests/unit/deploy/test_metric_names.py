"""Every metric a Tenure process can expose passes ``promtool check metrics`` and follows the
naming conventions promtool does not check (Unix times end in ``_timestamp_seconds``).

The live /metrics of every running process are checked the same way after a platform run
(tests/integration/observability/test_metric_lint.py).
"""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.deploy.dashboards import ROOT
from tests.unit.deploy.exposition import collected_families, exposition_text
from tests.unit.deploy.promtool import promtool, run_promtool

STANDARD_TIMESTAMPS = frozenset({"process_start_time_seconds"})
"""Unix-time metrics whose names the client library fixes."""


@pytest.fixture(scope="module")
def exposition() -> str:
    return exposition_text()


def test_the_exposition_holds_every_family(exposition: str) -> None:
    exposed = {f.name for f in text_string_to_metric_families(exposition)}
    defined = {m.name for m in collected_families()}
    assert defined <= exposed, sorted(defined - exposed)
    # the check below is not vacuous: labelled families have samples
    assert 'tenure_dead_letters_total{category="x",worker="x"}' in exposition
    assert 'tenure_survival_median_seconds{group="all"}' in exposition


def test_promtool_check_metrics_is_clean(exposition: str) -> None:
    assert promtool("check", "metrics", stdin=exposition).strip() == ""


def test_promtool_check_metrics_would_catch_a_gauge_named_total(exposition: str) -> None:
    broken = exposition + (
        "# HELP tenure_bogus_total Not a counter.\n"
        "# TYPE tenure_bogus_total gauge\n"
        "tenure_bogus_total 1.0\n"
    )
    done = run_promtool("check", "metrics", stdin=broken)
    assert done.returncode != 0
    assert "tenure_bogus_total" in done.stdout + done.stderr


def test_unix_times_end_in_timestamp_seconds() -> None:
    for metric in collected_families():
        says_unix_time = re.search(r"\bUnix\b", metric.documentation) is not None
        named_as_one = metric.name.endswith("_timestamp_seconds")
        if metric.name in STANDARD_TIMESTAMPS:
            continue
        assert says_unix_time == named_as_one, (
            f"{metric.name}: a gauge of Unix time ends in _timestamp_seconds (and says so in"
            f" its help); help: {metric.documentation!r}"
        )


DEFINITION = re.compile(
    r"\b(?:Counter|Gauge|Histogram|Summary|Info|Enum|GaugeMetricFamily|CounterMetricFamily)"
    r"\(\s*\"(tenure_[a-z0-9_]+)\""
)


def test_every_metric_defined_in_the_code_is_checked() -> None:
    """A metric defined in a module the exposition does not import would escape the checks."""
    defined: dict[str, str] = {}
    for package in ("tenure", "services", "streams"):
        for path in (ROOT / package).rglob("*.py"):
            for name in DEFINITION.findall(path.read_text(encoding="utf-8")):
                defined[name] = str(path.relative_to(ROOT))
    assert len(defined) > 30  # the scan finds the definitions
    checked = {m.name for m in collected_families()}
    missing = {name: path for name, path in defined.items() if name not in checked}
    assert not missing, f"add their modules to exposition.METRIC_MODULES: {missing}"
