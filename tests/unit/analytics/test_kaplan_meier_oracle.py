"""Kaplan-Meier curve, band, median (+CI) and RMST equal lifelines to 1e-9."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenure.analytics import (
    LifeTable,
    kaplan_meier,
    median_survival,
    qth_survival_time,
    restricted_mean_survival_time,
)

HYPO = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def compare(oracle, durations, observed, alpha=0.05):
    table = LifeTable.from_durations(durations, observed)
    curve = kaplan_meier(table, alpha=alpha)
    last = max(durations)
    horizons = sorted({0.0, 0.5, 1.0, float(last), last + 3.0, last / 2, 7.0, 30.0, math.inf})
    ref = oracle.km(durations, observed, horizons, alpha=alpha)

    assert list(curve.days) == ref.timeline.tolist()
    oracle.assert_close("survival", curve.survival, ref.survival)
    oracle.assert_close("ci_low", curve.ci_low, ref.ci_low)
    oracle.assert_close("ci_high", curve.ci_high, ref.ci_high)
    assert list(curve.at_risk) == ref.at_risk.tolist()
    assert list(curve.events) == ref.events.tolist()
    assert list(curve.censored) == ref.censored.tolist()

    med = median_survival(curve)
    oracle.assert_close("median", med.median, ref.median)
    oracle.assert_close("median_ci", [med.ci_low, med.ci_high], list(ref.median_ci))
    assert qth_survival_time(curve, 0.5) == med.median
    for h, expected in ref.rmst.items():
        oracle.assert_close("rmst", restricted_mean_survival_time(curve, h), expected)
    return curve


def random_dataset(rng: random.Random, n: int, max_day: int, censor_share: float):
    durations = [rng.randint(0, max_day) for _ in range(n)]
    observed = [rng.random() >= censor_share for _ in range(n)]
    return durations, observed


@pytest.mark.parametrize(
    ("seed", "n", "max_day", "censor_share"),
    [
        (1, 1, 10, 0.0),
        (2, 1, 10, 1.0),
        (3, 2, 3, 0.5),
        (4, 10, 0, 0.3),  # every duration is day 0
        (5, 50, 5, 0.3),  # heavy ties
        (6, 200, 400, 0.0),  # no censoring
        (7, 200, 400, 1.0),  # all censored
        (8, 500, 400, 0.4),
        (9, 2000, 400, 0.6),
        (10, 5000, 60, 0.2),
        (11, 3, 1, 0.0),
    ],
)
def test_fixed_datasets(oracle, seed, n, max_day, censor_share):
    rng = random.Random(seed)
    durations, observed = random_dataset(rng, n, max_day, censor_share)
    compare(oracle, durations, observed)


@pytest.mark.parametrize(
    ("durations", "observed"),
    [
        ([0], [True]),
        ([0], [False]),
        ([5], [True]),
        ([0, 0, 0], [True, True, False]),
        ([1, 1], [True, False]),  # S hits 0.5 exactly
        ([1, 2, 3, 4], [True, True, True, True]),
        ([2, 2, 2, 2], [True, True, True, True]),  # S -> 0 at once
        ([3, 3, 5, 5], [True, False, True, False]),
    ],
)
def test_small_edge_cases(oracle, durations, observed):
    compare(oracle, durations, observed)


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.2])
def test_other_alphas(oracle, alpha):
    durations, observed = random_dataset(random.Random(42), 300, 100, 0.4)
    compare(oracle, durations, observed, alpha=alpha)


def test_day_zero_point_and_known_values():
    curve = kaplan_meier(LifeTable.from_durations([1, 2, 2, 3], [True, True, False, True]))
    assert curve.days == (0, 1, 2, 3)
    assert curve.survival[0] == 1.0 and (curve.ci_low[0], curve.ci_high[0]) == (1.0, 1.0)
    assert curve.at_risk == (4, 4, 3, 1)
    assert math.isclose(curve.survival[2], 0.75 * 2 / 3, abs_tol=1e-15)
    assert curve.survival[3] == 0.0 and (curve.ci_low[3], curve.ci_high[3]) == (0.0, 0.0)
    assert curve.survival_at(2.5) == curve.survival[2]
    assert [p.day for p in curve.points] == [0, 1, 2, 3]


def test_empty_table_rejected():
    with pytest.raises(ValueError):
        kaplan_meier(LifeTable())


samples = st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=1, max_size=80)


@HYPO
@given(samples)
def test_matches_lifelines_random(oracle, rows):
    durations = [d for d, _ in rows]
    observed = [o for _, o in rows]
    compare(oracle, durations, observed)


@HYPO
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=60),
    st.sampled_from(["all", "none", "mixed"]),
    st.randoms(use_true_random=False),
)
def test_matches_lifelines_heavy_ties(oracle, durations, censoring, rnd):
    if censoring == "all":
        observed = [False] * len(durations)
    elif censoring == "none":
        observed = [True] * len(durations)
    else:
        observed = [rnd.random() < 0.5 for _ in durations]
    compare(oracle, durations, observed)
