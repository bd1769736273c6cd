"""The churn benchmark runs end to end on a small population and reports every method."""

from __future__ import annotations

import json
from datetime import date, timedelta

from bench import churn
from bench.__main__ import WITHOUT_SERVERS


def test_churn_bench_small() -> None:
    result = json.loads(churn.run(600).to_json())
    assert "churn" in WITHOUT_SERVERS
    measured, baseline = result["measured"], result["baseline"]
    assert 0.5 < measured["return_times"]["auc"] <= 1.0
    assert len(measured["return_times"]["deciles"]) == 10
    assert set(baseline) == {"silence", "todays_score", "bgnbd", "base_rate"}
    assert "auc_1_minus_p_alive" in baseline["bgnbd"]
    assert (
        result["ratio"] == round(measured["return_times"]["auc"] / baseline["silence"]["auc"], 4)
        or abs(result["ratio"] - measured["return_times"]["auc"] / baseline["silence"]["auc"])
        < 1e-3
    )
    assert set(result["notes"]["targets_met"]) == {
        "auc_above_silence_by_0.02",
        "auc_at_least_bgnbd",
        "brier_below_base_rate",
        "brier_below_todays_score",
        "every_decile_within_0.05",
    }
    assert [c["threshold"] for c in measured["return_times_care"]] == list(churn.THRESHOLDS)


def test_engagement_days_equal_the_platforms_fold_of_the_same_events() -> None:
    from tenure.domain.activity import engagement_days
    from tenure.domain.events import parse_event
    from tenure.domain.world import fold
    from tenure.simulation import SimulationParameters, simulate

    sim = simulate(SimulationParameters(people=40, seed=2, erasure=False, duplicate_rate=0))
    world = fold(parse_event(d.envelope) for d in sim.deliveries)
    compared = 0
    for life in sim.lives:
        state = world.persons.get(life.person_id)
        if state is None or life.arrival > sim.parameters.end:
            continue
        end = sim.parameters.end
        platform = list(engagement_days(state, end))
        known = [d for d in churn.engagement_days(life) if d <= end.date()]  # lives go on
        assert known == platform, life.key
        compared += 1
    assert compared > 30


def test_the_retired_silence_score_is_relative_to_the_usual_gap() -> None:
    """The baseline the view stored before issue 15 (now only in the bench)."""
    today = date(2024, 6, 1)
    daily = [today - timedelta(days=n) for n in range(5, 40)]
    weekly = [today - timedelta(days=n) for n in range(5, 90, 7)]
    assert (
        churn.silence_score(daily, today, 30) > 0.9 > 0.3 > churn.silence_score(weekly, today, 30)
    )
    assert churn.silence_score([], today, 30) == 0.0
    assert churn.silence_score([today - timedelta(days=30)], today, 30) == 1.0
    assert 0 < churn.silence_score([today], today, 30) < 0.05
