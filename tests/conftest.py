"""Test tiers: unit (no I/O), Postgres, and Kafka on two brokers (Apache Kafka, embedded Tansu).

The README's test command runs every tier whose prerequisites exist and reports which ran.
With ``TENURE_REQUIRE_ALL_TIERS=1`` (set by ``.ci/run``) a tier that would be skipped fails.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator

import pytest

from tenure.entrypoints.logs import QUIET_AT_INFO

TIER_RESULTS: Counter[str] = Counter()
TIER_SKIPS: dict[str, str] = {}


def require_all_tiers() -> bool:
    """Whether a missing tier is a failure (CI) rather than a skip (a laptop)."""
    return os.environ.get("TENURE_REQUIRE_ALL_TIERS") == "1"


def skip_tier(tier: str, reason: str) -> None:
    """Skip (or, under TENURE_REQUIRE_ALL_TIERS=1, fail) a test because its tier is missing."""
    TIER_SKIPS[tier] = reason
    if require_all_tiers():
        pytest.fail(f"tier {tier} cannot run: {reason} (TENURE_REQUIRE_ALL_TIERS=1)")
    pytest.skip(f"tier {tier} skipped: {reason}")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger back as it was after each test.

    A command run in-process (typer's ``CliRunner``) configures logging onto the stderr it
    swaps in and closes; left on the root logger, that handler fails every later test's log.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_AT_INFO}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)


@pytest.hookimpl(tryfirst=True)  # before `-m "not soak"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked ``apache_kafka_in_soak`` runs on the embedded broker in the default
    tier and on Apache Kafka in the soak tier (``make test-faults``): both in CI."""
    for item in items:
        if item.get_closest_marker("apache_kafka_in_soak") and "[apache-kafka" in item.nodeid:
            item.add_marker(pytest.mark.soak)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" or not report.passed:
        return
    name = report.nodeid
    if "[apache-kafka" in name:
        TIER_RESULTS["apache-kafka"] += 1
    elif "[tansu" in name:
        TIER_RESULTS["tansu (embedded)"] += 1
    elif "/integration/" in name:
        TIER_RESULTS["postgres / platform"] += 1
    else:
        TIER_RESULTS["unit"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tr = terminalreporter
    tr.section("Tenure test tiers")
    for tier in ("unit", "postgres / platform", "apache-kafka", "tansu (embedded)"):
        tr.write_line(f"{tier:22} {TIER_RESULTS.get(tier, 0)} passed")
    for tier, reason in TIER_SKIPS.items():
        tr.write_line(f"SKIPPED TIER {tier}: {reason}")
