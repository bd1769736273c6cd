"""Return-time life tables: the churn probability is S(s+W)/S(s), bounded, monotone, shrunk."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter

from tenure.analytics.return_time_filing import filed, filing_change
from tenure.analytics.return_times import (
    ALL,
    MAX_AGE_DAYS,
    ROOT,
    ReturnBucket,
    ReturnTimeCounts,
    bucket_after,
    experience_of,
    fit,
    person_gaps,
    rhythm_of,
)

DAY0 = date(2025, 1, 1)
AS_OF = date(2025, 12, 31)
NOWHERE = ReturnBucket("nowhere", "nowhere", "nowhere")
"""A bucket the model has no data for: it reads the root curve."""

HYPO = settings(max_examples=60, deadline=None)

offsets = st.lists(st.integers(0, 364), min_size=1, max_size=25)
histories = st.lists(offsets, min_size=1, max_size=25)


def days_of(offs: list[int]) -> list[date]:
    return [DAY0 + timedelta(days=o) for o in offs]


def counts_of(people: list[list[int]], group: str = ALL) -> ReturnTimeCounts:
    return ReturnTimeCounts.of(person_gaps(days_of(p), group) for p in people)


def lifelines_ratio(people: list[list[int]], silence: int, window: int) -> float:
    durations, observed = [], []
    for p in people:
        ds = sorted(set(p))
        durations += [b - a for a, b in pairwise(ds)]
        observed += [1] * (len(ds) - 1)
        durations.append((AS_OF - days_of([ds[-1]])[0]).days)
        observed.append(0)
    km = KaplanMeierFitter().fit(durations, observed)
    at = km.survival_function_at_times([silence, silence + window]).to_numpy()
    return float(at[1] / at[0])


def test_rhythm_and_experience_bins() -> None:
    assert rhythm_of([]) == "none"
    assert rhythm_of([1, 1, 1]) == "1d"
    assert rhythm_of([7, 7, 6]) == "8d"
    assert rhythm_of([100, 1, 1, 1, 1, 1]) == "1d"  # only the last five gaps count
    assert rhythm_of([40]) == "long"
    assert [experience_of(n) for n in (0, 1, 2, 3, 9, 10, 29, 30)] == [
        "0", "1-2", "1-2", "3-9", "3-9", "10-29", "10-29", "30+"
    ]  # fmt: skip


def test_each_gap_is_filed_under_the_rhythm_before_it_opened() -> None:
    gaps = person_gaps(days_of([0, 1, 2, 9, 9]), "shop")
    assert gaps.closed == (
        (ReturnBucket("none", "0", "shop"), 1),
        (ReturnBucket("1d", "1-2", "shop"), 1),
        (ReturnBucket("1d", "1-2", "shop"), 7),
    )
    assert gaps.open_bucket == bucket_after([1, 1, 7], "shop") == ReturnBucket("1d", "3-9", "shop")
    assert gaps.open_since == DAY0 + timedelta(days=9)
    assert person_gaps([]).open_bucket is None


@HYPO
@given(histories, st.integers(0, 60), st.integers(1, 45))
def test_without_shrinkage_the_root_equals_kaplan_meier_from_lifelines(
    people: list[list[int]], silence: int, window: int
) -> None:
    model = fit(counts_of(people), AS_OF, shrinkage=0.0)
    ours = model.conditional_silence(NOWHERE, silence, window)
    assert model.hazard(NOWHERE)[1] == ROOT
    try:
        expected = lifelines_ratio(people, silence, window)
    except ZeroDivisionError:  # S(s) = 0: nobody left at risk
        return
    if expected == expected:  # not nan
        assert ours == pytest.approx(expected, abs=1e-9)


def test_hand_built_table() -> None:
    # Gaps 2, 2, 4 closed; one open gap of age 3 (last day 3 days before as_of).
    people = [[0, 2, 4, 8]]
    as_of = DAY0 + timedelta(days=11)
    model = fit(counts_of(people), as_of, shrinkage=0.0)
    # At risk: age 1-2: 4 gaps, 2 returns at 2 -> h(2) = 1/2; ages 3: 2 (gap 4, open 3);
    # age 4: 1 (gap 4) returns -> h(4) = 1.  S(1)=1, S(2)=1/2, S(3)=1/2, S(4)=0.
    assert model.conditional_silence(NOWHERE, 0, 1) == 1.0
    assert model.conditional_silence(NOWHERE, 0, 2) == 0.5
    assert model.conditional_silence(NOWHERE, 2, 1) == 1.0
    assert model.conditional_silence(NOWHERE, 1, 3) == 0.0


@HYPO
@given(histories, st.integers(0, 400), st.integers(0, 60), st.floats(0, 100))
def test_probability_is_in_0_1_and_never_falls_as_silence_grows(
    people: list[list[int]], silence: int, window: int, k: float
) -> None:
    model = fit(counts_of(people), AS_OF, shrinkage=k)
    bucket = bucket_after([3, 4])
    values = [model.silent_probability(bucket, s, window) for s in (silence, silence + 1)]
    assert 0.0 <= values[0] <= values[1] <= 1.0
    assert model.silent_probability(bucket, silence, 0) == 1.0


@HYPO
@given(histories, histories, st.integers(0, 40), st.integers(1, 40))
def test_shrinkage_limits(
    shop: list[list[int]], app: list[list[int]], silence: int, window: int
) -> None:
    counts = counts_of(shop, "shop")
    for gaps in (person_gaps(days_of(p), "app") for p in app):
        counts.add(gaps)
    bucket = bucket_after([1, 1, 1], "shop")
    parent = ReturnBucket(bucket.rhythm, bucket.experience, ALL)
    # k = 0: the bucket's own Kaplan-Meier (where it has data).
    raw = fit(counts, AS_OF, shrinkage=0.0)
    alone = fit(counts_of(shop, "shop"), AS_OF, shrinkage=0.0)
    if bucket.key in raw.hazards:  # where the bucket has gaps at risk (else: the parent's)
        at_risk = raw.at_risk[bucket.key]
        own = [h for h, n in zip(raw.hazards[bucket.key], at_risk, strict=True) if n > 0]
        assert own == [h for h, n in zip(alone.hazards[bucket.key], at_risk, strict=True) if n > 0]
    # k huge: the parent's curve.
    strong = fit(counts, AS_OF, shrinkage=1e12)
    if bucket.key in strong.hazards:
        assert strong.conditional_silence(bucket, silence, window) == pytest.approx(
            strong.conditional_silence(parent, silence, window), abs=1e-6
        )
    # No data in the bucket: exactly the parent's curve.
    other = ReturnBucket(bucket.rhythm, bucket.experience, "never-seen")
    assert strong.conditional_silence(other, silence, window) == strong.conditional_silence(
        parent, silence, window
    )


@HYPO
@given(histories, offsets)
def test_adding_then_removing_a_person_is_no_change(
    people: list[list[int]], extra: list[int]
) -> None:
    counts = counts_of(people)
    before = fit(counts, AS_OF)
    gaps = person_gaps(days_of(extra))
    counts.add(gaps)
    counts.add(gaps, sign=-1)
    assert fit(counts, AS_OF).hazards == before.hazards


def test_long_gaps_are_censored_at_the_cap() -> None:
    people = [[0, MAX_AGE_DAYS + 50]]
    model = fit(counts_of(people), DAY0 + timedelta(days=MAX_AGE_DAYS + 60), shrinkage=0.0)
    assert model.conditional_silence(NOWHERE, MAX_AGE_DAYS - 5, 30) == 1.0


_day_lists = st.lists(st.integers(0, 400).map(lambda n: date(2025, 1, 1) + timedelta(days=n)))


def _full_change(
    before: tuple[str, list[date]] | None, after: tuple[str, list[date]] | None
) -> tuple[Counter[Any], Counter[Any]]:
    returns: Counter[Any] = Counter()
    opened: Counter[Any] = Counter()
    for sign, filing in ((-1, before), (1, after)):
        if filing is not None:
            gaps = person_gaps(filing[1], filing[0])
            for bucket, length in gaps.closed:
                returns[(bucket.key, length)] += sign
            if gaps.open_bucket is not None:
                opened[(gaps.open_bucket.key, gaps.open_since)] += sign
    return returns, opened


@given(_day_lists, _day_lists, st.booleans(), st.sampled_from([ALL, "entry:x"]))
@settings(max_examples=300)
def test_a_filing_change_refiles_only_what_changed_but_equals_refiling_everything(
    before: list[date], later: list[date], extend: bool, group: str
) -> None:
    """Days added after the known ones (the usual change), or any other change: the
    incremental change equals removing the whole old filing and adding the new one."""
    after = [*before, *(d + timedelta(days=401) for d in later)] if extend else later
    for old, new in (((ALL, before), (group, after)), ((group, before), (group, after))):
        returns: Counter[Any] = Counter()
        opened: Counter[Any] = Counter()
        filing_change(old, new, returns, opened)
        want_returns, want_opened = _full_change(old, new)
        assert {k: n for k, n in returns.items() if n} == {
            k: n for k, n in want_returns.items() if n
        }
        assert {k: n for k, n in opened.items() if n} == {k: n for k, n in want_opened.items() if n}


@given(st.lists(_day_lists, max_size=8), st.integers(0, 8))
@settings(max_examples=200)
def test_filings_of_persons_filed_apart_add_up_to_filing_them_together(
    people: list[list[date]], cut: int
) -> None:
    """What a replay's workers do: each files its parts' persons, the sums are the counts."""
    named = [(f"p{n}", days) for n, days in enumerate(people)]
    together = filed(named)
    apart = filed(named[:cut])
    apart.add(filed(named[cut:]))
    assert (apart.returns, apart.opened) == (together.returns, together.opened)
    returns: Counter[Any] = Counter()
    opened: Counter[Any] = Counter()
    for _, days in named:  # one after the other, as the rebuild files them
        filing_change(None, (ALL, days) if days else None, returns, opened)
    assert (together.returns, together.opened) == (returns, opened)
