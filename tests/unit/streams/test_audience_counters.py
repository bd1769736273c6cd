"""The projector's audience counters move by what the stage wrote since the last report,
once (``streams.projector.app.count_audiences``)."""

from __future__ import annotations

from collections import Counter

from prometheus_client import REGISTRY

from streams.projector.app import count_audiences
from tenure.projection.audiences import AudienceTotals


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_counters_move_by_the_stage_totals_once() -> None:
    totals = AudienceTotals()
    flows: Counter[tuple[str, str]] = Counter()
    suppressions: Counter[tuple[str, str]] = Counter()
    entered = {"audience": "unit-a", "change": "entered"}
    no_consent = {"audience": "unit-a", "reason": "no_consent"}
    before = _sample("tenure_audience_changes_total", **entered)
    before_s = _sample("tenure_audience_suppressions_total", **no_consent)
    totals.flows[("unit-a", "entered")] += 3
    totals.suppressions[("unit-a", "no_consent")] += 2
    count_audiences(totals, flows, suppressions)
    count_audiences(totals, flows, suppressions)  # nothing new: no move
    assert _sample("tenure_audience_changes_total", **entered) == before + 3
    assert _sample("tenure_audience_suppressions_total", **no_consent) == before_s + 2
    totals.flows[("unit-a", "entered")] += 1
    count_audiences(totals, flows, suppressions)
    assert _sample("tenure_audience_changes_total", **entered) == before + 4
