"""When things happen: tenure, delays and usage times drawn from seeded generators."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

DAY = timedelta(days=1)
"""One day."""


def weibull_scale(median: float, shape: float) -> float:
    """The Weibull scale whose median is ``median`` for the given ``shape``."""
    return median / float(math.log(2) ** (1 / shape))


def tenure_days(rng: random.Random, median: float, shape: float) -> float:
    """Draw an active tenure in days from a Weibull distribution with this median."""
    return rng.weibullvariate(weibull_scale(median, shape), shape)


def delay_days(rng: random.Random, mean: float, cap: float | None = None) -> float:
    """Draw an exponential delay in days with ``mean``, redrawn while above ``cap``."""
    if mean <= 0:
        return 0.0
    while True:
        value = rng.expovariate(1 / mean)
        if cap is None or value < cap:
            return value


def count(rng: random.Random, mean: float) -> int:
    """Draw a Poisson count with ``mean`` (Knuth's method; means here are small)."""
    if mean <= 0:
        return 0
    limit, product, k = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        k += 1
    return k


def after(moment: datetime, days: float) -> datetime:
    """``moment`` plus ``days``, rounded down to the whole second."""
    return (moment + timedelta(days=days)).replace(microsecond=0)


def poisson_times(
    rng: random.Random, start: datetime, stop: datetime, per_day: float
) -> Iterator[datetime]:
    """Times of a Poisson process of ``per_day`` events a day in ``[start, stop)``."""
    if per_day <= 0:
        return
    span = (stop - start) / DAY
    t = rng.expovariate(per_day)
    while t < span:
        yield after(start, t)
        t += rng.expovariate(per_day)


def next_sync(moment: datetime, interval_days: float, phase_days: float) -> datetime:
    """When a device that syncs every ``interval_days`` (offset ``phase_days``) next syncs.

    Syncs happen at ``epoch + phase + k * interval``; an event waits for the first sync at
    or after its own time.
    """
    since_epoch = (moment - datetime(2000, 1, 1, tzinfo=moment.tzinfo)) / DAY - phase_days
    k = math.ceil(since_epoch / interval_days)
    due = datetime(2000, 1, 1, tzinfo=moment.tzinfo) + timedelta(
        days=phase_days + k * interval_days
    )
    return max(moment, due.replace(microsecond=0) + timedelta(seconds=1))
