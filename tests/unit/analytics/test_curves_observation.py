"""Observations (tenure, time-to-X), time-to-X curves and window rates."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from tenure.analytics import (
    LifeTable,
    Observation,
    TimeToEventKind,
    cumulative_incidence,
    kaplan_meier,
    life_table_from_observations,
    rate_within,
    tenure_observation,
    time_to_event,
)

T0 = datetime(2026, 1, 1, 9, 0)


def test_tenure_observation_censored_at_last_engagement_not_as_of():
    last = T0 + timedelta(days=10, hours=5)
    active = tenure_observation(T0, last, as_of=last + timedelta(days=29, hours=23))
    churned = tenure_observation(T0, last, as_of=last + timedelta(days=30))
    assert active == Observation(10, False)
    assert churned == Observation(10, True)  # churn flips the flag only
    assert tenure_observation(T0, last, last + timedelta(days=8), churn_after_days=7).observed
    with pytest.raises(ValueError):
        tenure_observation(last, T0, last)
    with pytest.raises(ValueError):
        tenure_observation(T0, last, last, churn_after_days=0)


def test_time_to_event():
    as_of = T0 + timedelta(days=20)
    assert time_to_event(T0, T0 + timedelta(days=3, hours=23), as_of) == Observation(3, True)
    assert time_to_event(T0, None, as_of) == Observation(20, False)
    assert time_to_event(T0, as_of + timedelta(days=1), as_of) == Observation(20, False)
    assert time_to_event(T0, T0, as_of) == Observation(0, True)
    with pytest.raises(ValueError):
        time_to_event(T0, T0 - timedelta(days=1), as_of)
    with pytest.raises(ValueError):
        time_to_event(as_of + timedelta(days=1), None, as_of)


def test_activation_curve_matches_lifelines(oracle):
    rng = random.Random(5)
    as_of = T0 + timedelta(days=90)
    observations = []
    for _ in range(400):
        purchase = T0 + timedelta(days=rng.randint(0, 89), hours=rng.randint(0, 23))
        activation = purchase + timedelta(days=rng.expovariate(0.2)) if rng.random() < 0.7 else None
        observations.append(time_to_event(purchase, activation, as_of))
    table = life_table_from_observations(observations)
    curve = kaplan_meier(table)
    ref = oracle.km([o.duration_days for o in observations], [o.observed for o in observations])
    oracle.assert_close("survival", curve.survival, ref.survival)
    inc = cumulative_incidence(curve, 7)
    i = list(ref.timeline).index(7.0)
    oracle.assert_close("incidence", inc.value, 1 - ref.survival[i])
    oracle.assert_close(
        "incidence", [inc.ci_low, inc.ci_high], [1 - ref.ci_high[i], 1 - ref.ci_low[i]]
    )
    assert TimeToEventKind("activation") is TimeToEventKind.ACTIVATION


def test_rate_within_brute_force():
    rng = random.Random(8)
    people = [(rng.randint(0, 30), rng.random() < 0.5) for _ in range(300)]
    table = LifeTable.from_durations([d for d, _ in people], [o for _, o in people])
    for window in [0, 1, 7, 14, 30, 31]:
        converted = sum(1 for d, o in people if o and d <= window)
        eligible = sum(1 for d, o in people if o or d >= window)
        rate = rate_within(table, window)
        assert (rate.converted, rate.eligible) == (converted, eligible)
        assert rate.share == (converted / eligible if eligible else None)
    assert rate_within(LifeTable.from_durations([1], [False]), 5).share is None
