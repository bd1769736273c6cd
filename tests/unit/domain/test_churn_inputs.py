"""The view carries the inputs of the churn probability: silence and the return-time bucket."""

from __future__ import annotations

from datetime import date, timedelta

from tenure.analytics.return_times import ReturnBucket, bucket_after
from tenure.domain import churn_inputs


def test_the_bucket_is_the_rhythm_and_experience_of_the_open_gap() -> None:
    today = date(2024, 6, 1)
    daily = [today - timedelta(days=n) for n in range(5, 40)]
    weekly = [today - timedelta(days=n) for n in range(5, 90, 7)]
    assert churn_inputs(daily, today).bucket == "*/1d/30+"
    assert churn_inputs(weekly, today).bucket == "*/8d/10-29"
    assert churn_inputs([today], today).bucket == "*/none/0"
    assert churn_inputs([], today).bucket is None
    # Days after ``today`` are not known yet, duplicates count once.
    later = [*weekly, today + timedelta(days=3), weekly[0]]
    assert churn_inputs(later, today) == churn_inputs(weekly, today)
    gaps = [7] * 12
    assert ReturnBucket.parse(churn_inputs(weekly, today).bucket or "") == bucket_after(gaps)


def test_the_silence_is_counted_from_the_last_engagement_day() -> None:
    today = date(2024, 6, 1)
    assert (
        churn_inputs([today - timedelta(days=9), today - timedelta(days=5)], today).silence_days
        == 5
    )
    assert churn_inputs([today], today).silence_days == 0
    assert churn_inputs([today + timedelta(days=1)], today).silence_days is None
