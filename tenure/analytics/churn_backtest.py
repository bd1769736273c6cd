"""Backtesting the churn probability: predict at an earlier day, compare with what happened.

At a cut day T, everyone engaged by T and not churned at T (silent fewer than W days) gets
the return-time model's ``P(no engagement in (T, T + W])``, the model learned only from the
days up to T; the outcome is read from the days after T. The benchmark (``python -m bench
--only churn``) learns on one simulated population and tests on another; the live backtest
(query service, dashboard) learns and tests on the platform's own history with
``T = as_of - W``. Pure: engagement days in, numbers out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from tenure.analytics.calibration import ReliabilityRow, auc, brier, reliability
from tenure.analytics.return_times import (
    ALL,
    DEFAULT_SHRINKAGE,
    ReturnTimeCounts,
    ReturnTimeModel,
    bucket_after,
    fit,
    person_gaps,
)


@dataclass(frozen=True, slots=True)
class Observed:
    """What the platform knew of one person at the cut day, and what happened next."""

    days: tuple[date, ...]
    """Engagement days up to the cut day, ascending (at least one)."""
    silent_next: bool
    """No engagement in the W days after the cut day."""
    group: str = ALL


def observe(
    histories: Iterable[tuple[Sequence[date], str]], cut: date, window: int
) -> list[Observed]:
    """Everyone engaged by ``cut``, with whether they stayed silent in ``(cut, cut + W]``."""
    horizon = cut + timedelta(days=window)
    people = []
    for days, group in histories:
        known = tuple(sorted({d for d in days if d <= cut}))
        if known:
            later = any(cut < d <= horizon for d in days)
            people.append(Observed(known, not later, group))
    return people


def not_churned(people: Iterable[Observed], cut: date, window: int) -> list[Observed]:
    """The people silent fewer than ``window`` days at ``cut`` (the ones a warning is for)."""
    return [p for p in people if (cut - p.days[-1]).days < window]


def learn(
    people: Iterable[Observed], cut: date, shrinkage: float = DEFAULT_SHRINKAGE
) -> ReturnTimeModel:
    """The return-time model of the histories as known at ``cut``."""
    return fit(ReturnTimeCounts.of(person_gaps(p.days, p.group) for p in people), cut, shrinkage)


def predict(model: ReturnTimeModel, person: Observed, cut: date, window: int) -> float:
    """The model's ``P(no engagement in the next window days)`` for ``person`` at ``cut``."""
    gaps = [(b - a).days for a, b in pairwise(person.days)]
    bucket = bucket_after(gaps, person.group)
    return model.silent_probability(bucket, (cut - person.days[-1]).days, window)


@dataclass(frozen=True, slots=True)
class Backtest:
    """How the churn probability did at one cut day."""

    cut: date
    window_days: int
    people: int
    """People not churned at the cut day (the ones scored)."""
    silent_next: int
    """Of them, how many had no engagement in the window after it."""
    auc: float | None
    """``None`` when everyone had the same outcome."""
    brier: float | None
    deciles: tuple[ReliabilityRow, ...]


def backtest(
    histories: Iterable[tuple[Sequence[date], str]],
    as_of: date,
    window: int,
    shrinkage: float = DEFAULT_SHRINKAGE,
) -> Backtest:
    """Score everyone at ``as_of - window`` with a model learned from the days up to then."""
    cut = as_of - timedelta(days=window)
    everyone = observe(histories, cut, window)
    model = learn(everyone, cut, shrinkage)
    scored = not_churned(everyone, cut, window)
    predictions = [predict(model, p, cut, window) for p in scored]
    outcomes = [int(p.silent_next) for p in scored]
    both = 0 < sum(outcomes) < len(outcomes)
    return Backtest(
        cut=cut,
        window_days=window,
        people=len(scored),
        silent_next=sum(outcomes),
        auc=auc(predictions, outcomes) if both else None,
        brier=brier(predictions, outcomes) if scored else None,
        deciles=tuple(reliability(predictions, outcomes)) if scored else (),
    )
