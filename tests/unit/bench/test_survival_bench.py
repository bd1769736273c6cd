"""The survival benchmark runs end to end at a tiny size (not a performance test)."""

from __future__ import annotations

import json

import pytest

from bench import survival
from bench.servers import servers
from tenure.runtime.process import StartupError
from tests.conftest import skip_tier

pytestmark = pytest.mark.timeout(120)


def test_survival_bench_small() -> None:
    with servers("tansu") as env:
        try:
            result = survival.run(env, 2000, projector_people=6, requests=5)
        except (StartupError, OSError) as exc:
            skip_tier("tansu", str(exc))
    line = json.loads(result.to_json())
    assert line["name"] == "survival"
    assert line["measured"]["survival_two_groups"]["requests"] == 5
    assert line["baseline"]["tenure_rows"] > 0
    assert line["measured"]["upkeep_ratio_with_over_without"] > 0
    assert line["ratio"] > 0
