"""Engagement rhythms: how a simulated user spreads their device use over their tenure.

Not everyone uses a device the same way: some every day, some on fixed weekdays, some in
seasons, some pause for weeks and come back, some fade out before they stop. A rhythm turns
a person's own generator into the moments they use the device, in time order; the moments
depend only on that generator and the activation time, so cutting the use at a horizon
only drops the latest moments.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tenure.simulation.schedule import after


class Rhythm(StrEnum):
    """How a user spreads their use over time."""

    DAILY = "daily"
    """Uses the device on most days."""
    WEEKLY = "weekly"
    """Uses it on one or two fixed weekdays, most weeks."""
    STEADY = "steady"
    """Uses it at random moments at a steady personal rate (a Poisson process)."""
    SEASONAL = "seasonal"
    """Uses it in seasons: weeks on, then weeks (often more than a month) off."""
    PAUSING = "pausing"
    """Uses it steadily but now and then pauses for days or weeks, then comes back."""
    FADING = "fading"
    """Uses it less and less often until they stop."""


@dataclass(frozen=True, slots=True)
class RhythmShares:
    """How users split into rhythms (normalised on use)."""

    daily: float = 0.15
    weekly: float = 0.20
    steady: float = 0.20
    seasonal: float = 0.10
    pausing: float = 0.15
    fading: float = 0.20

    def normalised(self) -> tuple[tuple[Rhythm, float], ...]:
        """The shares as ``(rhythm, probability)`` pairs summing to 1."""
        pairs = tuple((rhythm, float(getattr(self, rhythm.value))) for rhythm in Rhythm)
        if any(share < 0 for _, share in pairs):
            raise ValueError("rhythm shares must not be negative")
        total = sum(share for _, share in pairs)
        if total <= 0:
            raise ValueError("at least one rhythm share must be positive")
        return tuple((rhythm, share / total) for rhythm, share in pairs)


def draw_rhythm(rng: random.Random, shares: RhythmShares) -> Rhythm:
    """Draw a rhythm with the given shares."""
    draw, acc = rng.random(), 0.0
    pairs = shares.normalised()
    for rhythm, share in pairs:
        acc += share
        if draw < acc:
            return rhythm
    return pairs[-1][0]


def use_times(
    rng: random.Random, rhythm: Rhythm, start: datetime, stop: datetime, per_week: float
) -> Iterator[datetime]:
    """Moments of use in ``[start, stop)``, in time order, for a user of ``rhythm``.

    ``per_week`` is the population's mean rate; each user's own rate varies around it
    (log-normal), drawn first from ``rng``. Every later draw depends only on the draws
    before it, so a later ``stop`` only adds moments at the end.
    """
    span = (stop - start).total_seconds() / 86400
    own = per_week / 7 * math.exp(rng.gauss(-0.18, 0.6))
    if rhythm is Rhythm.DAILY:
        yield from _daily(rng, start, span, rng.uniform(0.6, 0.95))
    elif rhythm is Rhythm.WEEKLY:
        yield from _weekly(rng, start, span)
    elif rhythm is Rhythm.STEADY:
        yield from _piecewise(rng, start, span, lambda _t: own, None)
    elif rhythm is Rhythm.SEASONAL:
        on, off = rng.uniform(20, 70), rng.uniform(20, 80)
        phase = rng.uniform(0, on + off)
        rate = max(own, 0.3)

        def seasonal(t: float) -> float:
            return rate if (t + phase) % (on + off) < on else 0.0

        yield from _piecewise(rng, start, span, seasonal, None)
    elif rhythm is Rhythm.PAUSING:
        yield from _piecewise(rng, start, span, lambda _t: max(own, 0.2), rng.uniform(30, 90))
    else:
        fade = rng.uniform(20, 120)
        rate = max(own, 0.3) * 1.5
        yield from _piecewise(rng, start, span, lambda t: rate * math.exp(-t / fade), None)


def _daily(rng: random.Random, start: datetime, span: float, p: float) -> Iterator[datetime]:
    """Once on a day with probability ``p``, at a random hour."""
    day = 0
    while day < span:
        used, hour = rng.random() < p, rng.uniform(0, 1)
        if used and day + hour < span:
            yield after(start, day + hour)
        day += 1


def _weekly(rng: random.Random, start: datetime, span: float) -> Iterator[datetime]:
    """On one or two fixed weekdays (relative to activation), most weeks."""
    days = sorted(rng.sample(range(7), rng.choice((1, 1, 2))))
    p = rng.uniform(0.7, 0.95)
    week = 0
    while week * 7 < span:
        for weekday in days:
            used, hour = rng.random() < p, rng.uniform(0, 1)
            t = week * 7 + weekday + hour
            if used and t < span:
                yield after(start, t)
        week += 1


def _piecewise(
    rng: random.Random,
    start: datetime,
    span: float,
    rate_at: Callable[[float], float],
    pause_every: float | None,
) -> Iterator[datetime]:
    """A Poisson process whose rate is ``rate_at(t)`` per day, constant within each day.

    With ``pause_every``, pauses (2 to 60 days, log-uniform) start at that mean interval.
    """
    t = 0.0
    next_pause = rng.expovariate(1 / pause_every) if pause_every else math.inf
    while t < span:
        if t >= next_pause:
            t += math.exp(rng.uniform(math.log(2), math.log(60)))
            assert pause_every is not None
            next_pause = t + rng.expovariate(1 / pause_every)
            continue
        rate = rate_at(t)
        day_end = min(math.floor(t) + 1.0, next_pause)
        step = rng.expovariate(rate) if rate > 0 else math.inf
        if t + step < day_end:
            t += step
            if t < span:
                yield after(start, t)
        else:
            t = day_end
