"""Kaplan-Meier survival curve with Greenwood variance and log-log confidence band.

Computed from a :class:`~tenure.analytics.lifetable.LifeTable` and equal (to ~1e-15) to
``lifelines.KaplanMeierFitter().fit(durations, observed)`` with default settings.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from tenure.analytics.distributions import two_sided_z
from tenure.analytics.lifetable import LifeTable

__all__ = ["KMPoint", "KaplanMeierCurve", "kaplan_meier"]


@dataclass(frozen=True, slots=True)
class KMPoint:
    """The curve at one day: value after that day's events, band and that day's counts."""

    day: int
    survival: float
    ci_low: float
    ci_high: float
    at_risk: int
    events: int
    censored: int


@dataclass(frozen=True, slots=True)
class KaplanMeierCurve:
    """A Kaplan-Meier curve as parallel columns, one entry per timeline day.

    ``days`` is lifelines' ``timeline``: day 0 followed by every distinct observed duration.
    ``survival``/``ci_low``/``ci_high`` are ``survival_function_`` and
    ``confidence_interval_``; ``at_risk`` is ``event_table.at_risk`` (people with duration
    >= day; censored people stay at risk at their own day); ``variance`` is Greenwood's
    ``sum d / (n (n - d))`` (the term is 0 when ``n == d``, as in lifelines).
    """

    days: tuple[int, ...]
    survival: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    variance: tuple[float, ...]
    at_risk: tuple[int, ...]
    events: tuple[int, ...]
    censored: tuple[int, ...]
    alpha: float

    @property
    def n(self) -> int:
        """Number of people the curve was estimated from."""
        return self.at_risk[0]

    @property
    def points(self) -> list[KMPoint]:
        """The curve as a list of :class:`KMPoint` (for serialisation)."""
        return [
            KMPoint(*row)
            for row in zip(
                self.days,
                self.survival,
                self.ci_low,
                self.ci_high,
                self.at_risk,
                self.events,
                self.censored,
                strict=True,
            )
        ]

    def index_at(self, day: float) -> int:
        """Index of the last timeline day ``<= day`` (the step in force); ``day >= 0``."""
        if day < 0:
            raise ValueError(f"day must be >= 0, got {day}")
        return bisect.bisect_right(self.days, day) - 1

    def survival_at(self, day: float) -> float:
        """Step-function value ``S(day)`` (lifelines ``predict(day)``)."""
        return self.survival[self.index_at(day)]


def kaplan_meier(table: LifeTable, alpha: float = 0.05) -> KaplanMeierCurve:
    """Kaplan-Meier estimate at day resolution from per-day counts.

    Matches lifelines conventions exactly:

    * timeline = day 0 plus every distinct duration (event or censoring). Day 0 is always
      present: with no durations of 0 it has ``S = 1`` and band ``(1, 1)``; durations of 0
      are events/censorings *at* day 0, so ``S(0) = 1 - d0 / n`` then.
    * ``S`` is computed as ``exp(cumsum(log(n - d) - log(n)))`` (lifelines' additive form),
      so it hits exactly 0 when everyone at risk has the event.
    * Greenwood variance ``V = sum d / (n (n - d))`` with the term set to 0 when ``n == d``.
    * Exponential Greenwood ("log-log") band, ``z = Phi^-1(1 - alpha / 2)``, ``v = log S``::

          low  = exp(-exp(log(-v) - z sqrt(V) / v))
          high = exp(-exp(log(-v) + z sqrt(V) / v))

      ``S == 1`` gives NaN, which lifelines (and we) turn into a band of (1, 1);
      ``S == 0`` gives (0, 0).

    Vectorised with numpy using the same operations as lifelines, so values agree bit for
    bit on the machines tested.

    Raises ``ValueError`` for an empty table (lifelines cannot fit one either).
    """
    n_total = table.n
    if n_total <= 0:
        raise ValueError("cannot estimate a Kaplan-Meier curve from an empty life table")
    z = two_sided_z(alpha)
    rows = table.counts()
    if not rows or rows[0][0] != 0:
        rows.insert(0, (0, 0, 0))
    counts = np.array(rows, dtype=np.int64).reshape(-1, 3)
    d = counts[:, 1]
    removed = d + counts[:, 2]
    population = n_total - np.concatenate(([0], np.cumsum(removed)[:-1]))
    remaining = population - d
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # lifelines: estimate = cumsum(log(n - d) - log(n)); log(0) = -inf gives S = 0.
        survival = np.exp(np.cumsum(np.log(remaining) - np.log(population)))
        # Greenwood terms d / (n (n - d)), set to 0 when n == d (lifelines replaces the inf).
        terms = d / (population.astype(np.float64) * remaining.astype(np.float64))
        variance = np.cumsum(np.where(remaining == 0, 0.0, terms))
        # Exponential Greenwood band (KaplanMeierFitter._bounds); NaN (S == 1) -> 1.0.
        v = np.log(survival)
        shift = z * np.sqrt(variance) / v
        centre = np.log(-v)
        low = np.nan_to_num(np.exp(-np.exp(centre - shift)), nan=1.0)
        high = np.nan_to_num(np.exp(-np.exp(centre + shift)), nan=1.0)

    return KaplanMeierCurve(
        days=tuple(counts[:, 0].tolist()),
        survival=tuple(survival.tolist()),
        ci_low=tuple(low.tolist()),
        ci_high=tuple(high.tolist()),
        variance=tuple(variance.tolist()),
        at_risk=tuple(population.tolist()),
        events=tuple(d.tolist()),
        censored=tuple(counts[:, 2].tolist()),
        alpha=alpha,
    )
