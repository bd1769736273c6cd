"""Engagement rhythms: varied, each true to its kind, and cut at a horizon only at the end."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from tenure.simulation import Rhythm, RhythmShares, SimulationParameters, lives_of
from tenure.simulation.rhythm import draw_rhythm, use_times

START = datetime(2025, 1, 1, tzinfo=UTC)
STOP = START + timedelta(days=360)


def days_of(rhythm: Rhythm, seed: int, stop: datetime = STOP) -> list[int]:
    times = use_times(random.Random(seed), rhythm, START, stop, 4.0)
    return sorted({(t - START).days for t in times})


def gaps(days: list[int]) -> list[int]:
    return [b - a for a, b in pairwise(days)]


@pytest.mark.parametrize("rhythm", list(Rhythm))
def test_times_are_ordered_in_the_span_and_a_later_stop_only_adds_at_the_end(
    rhythm: Rhythm,
) -> None:
    for seed in range(5):
        full = list(use_times(random.Random(seed), rhythm, START, STOP, 4.0))
        assert full == sorted(full)
        assert all(START <= t < STOP for t in full)
        cut = START + timedelta(days=100)
        short = list(use_times(random.Random(seed), rhythm, START, cut, 4.0))
        assert short == [t for t in full if t < cut]


def test_daily_users_use_on_most_days() -> None:
    for seed in range(10):
        assert len(days_of(Rhythm.DAILY, seed)) > 0.5 * 360


def test_weekly_users_keep_to_one_or_two_weekdays() -> None:
    for seed in range(10):
        weekdays = Counter(d % 7 for d in days_of(Rhythm.WEEKLY, seed))
        assert 1 <= len(weekdays) <= 2
        assert sum(weekdays.values()) > 0.6 * 360 / 7


def test_seasonal_and_pausing_users_go_quiet_for_weeks_and_come_back() -> None:
    for rhythm in (Rhythm.SEASONAL, Rhythm.PAUSING):
        long_breaks = [max(gaps(days_of(rhythm, seed)), default=0) for seed in range(20)]
        assert sum(g >= 20 for g in long_breaks) >= 10, (rhythm, long_breaks)


def test_fading_users_use_less_and_less() -> None:
    for seed in range(10):
        days = days_of(Rhythm.FADING, seed)
        assert len([d for d in days if d < 60]) > len([d for d in days if 120 <= d < 180])


def test_steady_users_rates_vary_between_people() -> None:
    counts = [len(days_of(Rhythm.STEADY, seed)) for seed in range(30)]
    assert statistics.pstdev(counts) > 0.2 * statistics.mean(counts)


def test_rhythms_are_drawn_with_their_shares_and_every_user_has_one() -> None:
    rng = random.Random(1)
    drawn = Counter(draw_rhythm(rng, RhythmShares()) for _ in range(20_000))
    for rhythm, share in RhythmShares().normalised():
        assert drawn[rhythm] / 20_000 == pytest.approx(share, abs=0.015)
    only = RhythmShares(daily=0, weekly=1, steady=0, seasonal=0, pausing=0, fading=0)
    assert {draw_rhythm(rng, only) for _ in range(50)} == {Rhythm.WEEKLY}
    with pytest.raises(ValueError):
        SimulationParameters(rhythms=RhythmShares(daily=-1))
    lives = lives_of(SimulationParameters(people=200, seed=5))
    users = [life for life in lives if life.uses_per_week]
    assert users and all(life.rhythm in set(Rhythm) for life in users)
    assert len({life.rhythm for life in users}) == len(Rhythm)
