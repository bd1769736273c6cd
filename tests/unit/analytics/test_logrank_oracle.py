"""Log-rank statistic and p-value equal lifelines.statistics.logrank_test to 1e-9."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenure.analytics import LifeTable, chi2_1_sf, logrank_test

HYPO = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def compare(oracle, da, oa, db, ob):
    ours = logrank_test(LifeTable.from_durations(da, oa), LifeTable.from_durations(db, ob))
    stat, p = oracle.logrank(da, oa, db, ob)
    oracle.assert_close("logrank_stat", ours.statistic, stat)
    oracle.assert_close("logrank_p", ours.p_value, p)
    return ours


def dataset(rng, n, max_day, censor_share, scale=1.0):
    durations = [
        min(max_day, int(rng.expovariate(3.0 / (max(max_day, 1) * scale)))) for _ in range(n)
    ]
    observed = [rng.random() >= censor_share for _ in range(n)]
    return durations, observed


@pytest.mark.parametrize(
    ("seed", "n_a", "n_b", "max_day", "censor_share", "scale_b"),
    [
        (1, 1, 1, 10, 0.0, 1.0),
        (2, 1, 30, 10, 0.3, 1.0),
        (3, 50, 50, 5, 0.3, 1.0),
        (4, 300, 200, 400, 0.4, 1.3),
        (5, 2000, 2000, 400, 0.5, 1.05),
        (6, 500, 20, 100, 0.0, 0.5),
        (7, 100, 100, 0, 0.2, 1.0),
        (8, 100, 100, 50, 1.0, 1.0),  # no events at all -> U = 0, p = 1
    ],
)
def test_fixed_datasets(oracle, seed, n_a, n_b, max_day, censor_share, scale_b):
    rng = random.Random(seed)
    da, oa = dataset(rng, n_a, max_day, censor_share)
    db, ob = dataset(rng, n_b, max_day, censor_share, scale_b)
    compare(oracle, da, oa, db, ob)


def test_known_value(oracle):
    ours = compare(oracle, [1, 2], [True, True], [5, 6], [True, True])
    assert math.isclose(ours.statistic, 2.8823529411764715, abs_tol=1e-12)
    assert ours.observed_a == 2 and ours.degrees_of_freedom == 1


def test_empty_group_is_undefined(oracle):
    ours = compare(oracle, [1, 2, 3], [True, True, True], [], [])
    assert ours.statistic == 0.0 and math.isnan(ours.p_value)


def test_symmetric_in_groups():
    a = LifeTable.from_durations([1, 3, 3, 7], [True, False, True, True])
    b = LifeTable.from_durations([2, 2, 9], [True, True, False])
    ab, ba = logrank_test(a, b), logrank_test(b, a)
    assert math.isclose(ab.statistic, ba.statistic, abs_tol=1e-12)
    assert math.isclose(ab.p_value, ba.p_value, abs_tol=1e-12)


def test_chi2_sf_matches_scipy():
    from scipy import stats

    for x in [0.0, 1e-12, 0.1, 1.0, 3.841458820694124, 10.0, 50.0, 200.0]:
        assert math.isclose(chi2_1_sf(x), float(stats.chi2.sf(x, 1)), rel_tol=1e-12, abs_tol=0)


group = st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=60)


@HYPO
@given(group, group)
def test_matches_lifelines_random(oracle, a, b):
    compare(oracle, [d for d, _ in a], [o for _, o in a], [d for d, _ in b], [o for _, o in b])
