"""The churn risk at one as-of: the model's probability, its inputs, and per-bucket cutoffs.

The cutoffs are how the persons list filters by risk without evaluating the model per row:
"last engagement day on or before the bucket's cutoff" must be exactly "risk >= threshold".
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.analytics.churn_risk import ANY_DAY, CARE_THRESHOLD, NO_DAY, ChurnRiskTable
from tenure.analytics.return_times import (
    ALL,
    EXPERIENCES,
    MAX_AGE_DAYS,
    RHYTHMS,
    ReturnBucket,
    ReturnTimeCounts,
    bucket_after,
    fit,
    person_gaps,
)

DAY0 = date(2025, 1, 1)
AS_OF = date(2025, 12, 31)
W = 30
HYPO = settings(max_examples=40, deadline=None)

offsets = st.lists(st.integers(0, 364), min_size=1, max_size=25)
histories = st.lists(offsets, min_size=1, max_size=25)


def table_of(people: list[list[int]], group: str = ALL) -> ChurnRiskTable:
    counts = ReturnTimeCounts.of(
        person_gaps([DAY0 + timedelta(days=o) for o in p], group) for p in people
    )
    return ChurnRiskTable(fit(counts, AS_OF), AS_OF, W)


def weekly_and_daily() -> ChurnRiskTable:
    """People with varied rhythms who sometimes pause, and some who leave."""
    rng = random.Random(7)
    people = []
    for n in range(120):
        usual = (1, 2, 7, 14)[n % 4]
        day, days = rng.randrange(60), []
        while day < 364 and rng.random() > 0.02:
            days.append(day)
            day += max(1, round(rng.expovariate(1 / usual))) + (40 if rng.random() < 0.05 else 0)
        people.append(days or [day % 364])
    return table_of(people)


def test_the_estimate_is_the_models_probability_at_the_persons_silence_and_bucket() -> None:
    table = weekly_and_daily()
    bucket = bucket_after([7] * 12)
    estimate = table.estimate(bucket.key, AS_OF - timedelta(days=10))
    expected = table.model.silent_probability(bucket, 10, W)
    assert estimate.probability == round(expected, 4)
    assert 0.0 < expected < 1.0
    assert (estimate.silence_days, estimate.bucket) == (10, bucket.key)
    assert estimate.curve == table.model.hazard(bucket)[1]
    assert estimate.gaps_at_risk == int(table.model.at_risk[estimate.curve or ""][11])
    assert estimate.care == (expected >= CARE_THRESHOLD)
    # A last day after the as-of counts as no silence yet; no engagement: no probability.
    assert table.estimate(bucket.key, AS_OF + timedelta(days=3)).silence_days == 0
    none = table.estimate(None, None)
    assert none.probability is None and none.silence_days is None and not none.care


def test_nothing_learned_means_no_probability_and_nobody_above_any_threshold() -> None:
    empty = ChurnRiskTable(fit(ReturnTimeCounts(), AS_OF), AS_OF, W)
    estimate = empty.estimate("*/1d/3-9", AS_OF - timedelta(days=4))
    assert estimate.probability is None and estimate.silence_days == 4
    assert empty.last_day_cutoffs(0.0) == {}


def test_churned_people_are_not_flagged_for_care() -> None:
    table = weekly_and_daily()
    gone = table.estimate(bucket_after([1] * 40).key, AS_OF - timedelta(days=W + 5))
    assert gone.probability is not None and gone.probability >= CARE_THRESHOLD
    assert not gone.care


@given(
    gaps=st.lists(st.integers(1, 400), max_size=40),
    group=st.sampled_from([ALL, "entry:connected_buyer"]),
)
def test_every_bucket_a_person_can_have_is_enumerated(gaps: list[int], group: str) -> None:
    table = table_of([[0, 3, 9]], "entry:connected_buyer")
    assert bucket_after(gaps, group) in table.buckets()
    assert len(table.buckets()) == 2 * len(RHYTHMS) * len(EXPERIENCES)


@HYPO
@given(
    people=histories,
    threshold=st.floats(0.0, 1.0),
    person=st.lists(st.integers(0, 400), min_size=1, max_size=30),
)
def test_the_cutoff_day_is_exactly_the_threshold(
    people: list[list[int]], threshold: float, person: list[int]
) -> None:
    table = table_of(people)
    cutoffs = table.last_day_cutoffs(threshold)
    days = sorted({DAY0 + timedelta(days=o) for o in person})
    bucket = bucket_after([(b - a).days for a, b in pairwise(days)])
    probability = table.estimate(bucket.key, days[-1]).probability
    assert probability is not None
    assert (probability >= threshold) == (days[-1] <= cutoffs[bucket.key])


def test_cutoffs_are_monotone_in_the_threshold_and_any_day_at_zero() -> None:
    table = weekly_and_daily()
    everyone = table.last_day_cutoffs(0.0)
    assert set(everyone) == {b.key for b in table.buckets()}
    assert set(everyone.values()) == {ANY_DAY}
    previous = everyone
    for threshold in (0.2, 0.5, 0.8, 0.95):
        cutoffs = table.last_day_cutoffs(threshold)
        assert set(cutoffs) == set(everyone)
        assert all(cutoffs[k] <= previous[k] for k in cutoffs)
        previous = cutoffs
    assert set(table.last_day_cutoffs(1.01).values()) == {NO_DAY}
    assert table.min_silence(ReturnBucket("1d", "30+"), 1.01) is None
    assert table.min_silence(ReturnBucket("1d", "30+"), 0.0) == 0
    assert (table.min_silence(ReturnBucket("1d", "30+"), 0.5) or 0) <= MAX_AGE_DAYS


def test_a_group_the_model_does_not_know_reads_every_groups_curve() -> None:
    """What the SQL filter's fallback to ``*/rhythm/experience`` relies on."""
    table = weekly_and_daily()
    last = AS_OF - timedelta(days=12)
    for rhythm in RHYTHMS:
        for experience in EXPERIENCES:
            unknown = table.estimate(f"entry:unknown/{rhythm}/{experience}", last)
            known = table.estimate(f"{ALL}/{rhythm}/{experience}", last)
            assert unknown.probability == known.probability
