"""The view carries the inputs of the churn probability: silence and the return-time bucket."""

from __future__ import annotations

from datetime import date, timedelta

from tenure.analytics.return_times import ReturnBucket, bucket_after
from tenure.domain import LifecycleConfig, churn_risk


def test_the_bucket_is_the_rhythm_and_experience_of_the_open_gap() -> None:
    config = LifecycleConfig()
    today = date(2024, 6, 1)
    daily = [today - timedelta(days=n) for n in range(5, 40)]
    weekly = [today - timedelta(days=n) for n in range(5, 90, 7)]
    assert churn_risk(daily, today, config).bucket == "*/1d/30+"
    assert churn_risk(weekly, today, config).bucket == "*/8d/10-29"
    assert churn_risk([today], today, config).bucket == "*/none/0"
    assert churn_risk([], today, config).bucket is None
    # Days after ``today`` are not known yet, duplicates count once.
    later = [*weekly, today + timedelta(days=3), weekly[0]]
    assert churn_risk(later, today, config).bucket == churn_risk(weekly, today, config).bucket
    gaps = [7] * 12
    assert ReturnBucket.parse(churn_risk(weekly, today, config).bucket or "") == bucket_after(gaps)
