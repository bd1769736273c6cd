"""The freshness benchmark's reading of ``tenure_projector_view_lag_seconds``: counts moved
between two scrapes, quantiles interpolated inside buckets as ``histogram_quantile`` does."""

from __future__ import annotations

import math

from bench.view_lag import quantile, view_lag

INF = float("inf")


def _scrape(kind: str, counts: dict[str, float]) -> dict[str, float]:
    return {
        f"tenure_projector_view_lag_seconds_bucket{{kind={kind},le={le}}}": n
        for le, n in counts.items()
    }


def test_a_quantile_is_interpolated_inside_its_bucket() -> None:
    buckets = {1.0: 50.0, 2.0: 90.0, 5.0: 100.0, INF: 100.0}
    assert quantile(buckets, 0.5) == 1.0
    assert math.isclose(quantile(buckets, 0.7) or 0, 1.5)  # 20 of the 40 in (1, 2]
    assert math.isclose(quantile(buckets, 0.99) or 0, 2 + 3 * 0.9)
    assert quantile({1.0: 0.0, INF: 10.0}, 0.99) == 1.0  # in +Inf: the highest finite bound
    assert quantile({1.0: 0.0, INF: 0.0}, 0.5) is None


def test_only_the_views_written_between_the_scrapes_count_per_kind() -> None:
    before = {
        **_scrape("person", {"1.0": 100, "2.0": 100, "+Inf": 100}),
        **_scrape("device", {"1.0": 5, "2.0": 5, "+Inf": 5}),
    }
    after = {
        **_scrape("person", {"1.0": 100, "2.0": 150, "+Inf": 200}),
        **_scrape("device", {"1.0": 5, "2.0": 5, "+Inf": 5}),
        "tenure_projector_derived_total{kind=person}": 7.0,
    }
    lag = view_lag(before, after, ("person", "device"))
    assert lag["person"]["views"] == 100
    assert lag["person"]["share_within_2s"] == 0.5  # the 100 earlier ones, all fast, left out
    assert lag["person"]["p50_s"] == 2.0 and lag["person"]["p99_s"] == 2.0
    assert lag["device"] == {"views": 0, "p50_s": None, "p99_s": None, "share_within_2s": None}
