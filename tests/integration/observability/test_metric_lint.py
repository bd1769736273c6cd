"""``promtool check metrics`` is clean on every /metrics the observed run scraped.

Every process of the platform (ingest, query, archiver, sdk-validator, projector, deriver,
follower) was
scraped every half second under load, and `tenure replay --metrics-port` at the end. Scrapes that
expose the same series differ only in values, so each distinct set of series is checked once.
"""

from __future__ import annotations

import re
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.observability.conftest import SCRAPED_PROCESSES as PROCESSES
from tests.integration.observability.conftest import Observed
from tests.unit.deploy.promtool import run_promtool

VALUE = re.compile(r" [^ ]+$")


def _series(text: str) -> str:
    """The exposition without sample values: what promtool's lint depends on."""
    return "\n".join(VALUE.sub("", line) for line in text.splitlines())


def test_promtool_check_metrics_is_clean_on_every_scrape(observed: Observed) -> None:
    distinct: dict[tuple[str, str], str] = {}
    for name, text in observed.scrapes:
        distinct.setdefault((name, _series(text)), text)
    assert {name for name, _ in distinct} == PROCESSES
    problems = []
    for (name, _), text in distinct.items():
        done = run_promtool("check", "metrics", stdin=text)
        if done.returncode != 0 or (done.stdout + done.stderr).strip():
            problems.append(f"{name}: {(done.stdout + done.stderr).strip()}")
    assert not problems, "\n".join(problems)
    # not vacuous: the scrapes held the families the renames were about
    final = {name: text for name, text in observed.scrapes}
    assert "tenure_replay_phase_items{" in final["replay"]
    assert "tenure_replay_started_timestamp_seconds " in final["replay"]
    assert "tenure_projection_max_event_timestamp_seconds " in final["query"]
    assert "tenure_survival_median_seconds{" in final["query"]


def test_gauges_holding_unix_time_end_in_timestamp_seconds(observed: Observed) -> None:
    """A Tenure gauge whose value is a recent Unix time is named ``*_timestamp_seconds``."""
    recent = (time.time() - 5 * 365 * 86400, time.time() + 86400)
    found = set()
    for name, text in observed.scrapes:
        for family in text_string_to_metric_families(text):
            if family.type != "gauge" or not family.name.startswith("tenure_"):
                continue
            if family.name.endswith("_created"):
                continue  # the client library's creation time of a counter or histogram
            for sample in family.samples:
                if recent[0] <= sample.value <= recent[1]:
                    assert family.name.endswith("_timestamp_seconds"), (name, family.name)
                    found.add(family.name)
    assert {
        "tenure_replay_started_timestamp_seconds",
        "tenure_replay_last_completed_timestamp_seconds",
    } <= found
