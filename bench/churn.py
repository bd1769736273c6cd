"""Churn warning quality: does the learned churn probability beat recency, BG/NBD and today's score?

A simulated population (seed ``TRAIN_SEED``) is observed up to day T of its span; the
return-time model learns from its engagement histories as of T (nothing after T). A second
population (``EVAL_SEED``, never seen by the model) is observed to its own day T; among the
people not churned at T (engaged at least once, silent less than W days), the outcome is
"no engagement in (T, T + W]", known from the simulation. Every method scores the same
people in the same run:

* ``return_times``: the model of ``tenure/analytics/return_times.py``;
* ``todays_score``: the hand-tuned logistic churn score this replaces (issue 15);
* ``silence``: days of silence alone (ranking only: it is not a probability);
* ``bgnbd``: BG/NBD (``lifetimes`` ``BetaGeoFitter``, fitted on the training population):
  ``1 - p_alive`` for ranking, and ``P(no engagement in W)`` =
  ``1 - p_alive + p_alive * ((alpha + T) / (alpha + T + W)) ** (r + x)`` as a probability;
* ``base_rate``: the training population's outcome rate for everyone (Brier reference).

Reported: AUC, Brier score, the reliability table by decile and its largest deviation.
``ratio`` = AUC of the model / AUC of silence alone. No servers are needed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from bench.result import Result
from tenure.analytics.calibration import auc, brier, max_deviation, reliability
from tenure.analytics.return_times import (
    ReturnTimeCounts,
    ReturnTimeModel,
    bucket_after,
    fit,
    person_gaps,
)
from tenure.domain.config import LifecycleConfig
from tenure.simulation import Life, SimulationParameters, lives_of

NAME = "churn"
DEFAULT_SIZE = 20_000
"""People who arrive on their own in each population (training and evaluation)."""
TRAIN_SEED = 1
EVAL_SEED = 2
SPAN_DAYS = 390
"""Simulated span; T = SPAN_DAYS - W so the outcome window ends with the span."""
ENGAGEMENT_TYPES = frozenset(
    {
        "device.activated",
        "device.used",
        "payment.completed",
        "feedback.submitted",
        "referral.completed",
    }
)
"""Event types that are engagement of the person whose life they are in (docs/lifecycle.md)."""
THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
"""Care thresholds whose precision and reach are reported (see docs/lifecycle.md)."""


@dataclass(frozen=True, slots=True)
class Person:
    """What the platform knows of one person at T, and what happened next."""

    days: tuple[date, ...]
    """Engagement days up to T."""
    silent_next: bool
    """No engagement in (T, T + W]."""


def engagement_days(life: Life) -> list[date]:
    """The person's engagement days (UTC) from the events of their life."""
    return sorted({h.time.date() for h in life.happenings if h.type in ENGAGEMENT_TYPES})


def observe(lives: Sequence[Life], as_of: date, window: int) -> list[Person]:
    """Everyone engaged at least once by ``as_of``, with the outcome in the next window."""
    horizon = as_of + timedelta(days=window)
    people = []
    for life in lives:
        days = engagement_days(life)
        known = tuple(d for d in days if d <= as_of)
        if known:
            later = any(as_of < d <= horizon for d in days)
            people.append(Person(known, not later))
    return people


def todays_score(days: Sequence[date], today: date, config: LifecycleConfig) -> float:
    """The churn score before issue 15 (hand-tuned logistic), kept here as a baseline."""
    silence = (today - days[-1]).days
    gaps = sorted((b - a).days for a, b in pairwise(days))
    usual = _median(gaps) if gaps else config.churn_default_usual_gap_days
    ratio = silence / max(usual, 1.0)
    exponent = -config.churn_steepness * (ratio - config.churn_midpoint_ratio)
    logistic = 1.0 / (1.0 + math.exp(min(exponent, 700.0)))
    return round(max(logistic, min(1.0, silence / config.inactivity_window_days)), 4)


def _median(values: Sequence[int]) -> float:
    n = len(values)
    return float(values[n // 2]) if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _bgnbd_summary(people: Sequence[Person], as_of: date) -> tuple[list[int], list[int], list[int]]:
    frequency = [len(p.days) - 1 for p in people]
    recency = [(p.days[-1] - p.days[0]).days for p in people]
    age = [(as_of - p.days[0]).days for p in people]
    return frequency, recency, age


def bgnbd(
    train: Sequence[Person], train_as_of: date, test: Sequence[Person], as_of: date, window: int
) -> tuple[list[float], list[float], dict[str, float]]:
    """BG/NBD from ``lifetimes``: (1 - p_alive, P(silent window), fitted parameters)."""
    from lifetimes import BetaGeoFitter

    f, r, t = _bgnbd_summary(train, train_as_of)
    fitter = BetaGeoFitter(penalizer_coef=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(f, r, t)
    params = {k: float(v) for k, v in fitter.params_.items()}
    f, r, t = _bgnbd_summary(test, as_of)
    alive = [float(p) for p in fitter.conditional_probability_alive(f, r, t)]
    alpha, shape = params["alpha"], params["r"]
    silent = [
        1 - a + a * ((alpha + age) / (alpha + age + window)) ** (shape + x)
        for a, x, age in zip(alive, f, t, strict=True)
    ]
    return [1 - a for a in alive], silent, params


def learn(people: Sequence[Person], as_of: date) -> ReturnTimeModel:
    """The return-time model learned from histories as of ``as_of``."""
    return fit(ReturnTimeCounts.of(person_gaps(p.days) for p in people), as_of)


def predict(model: ReturnTimeModel, person: Person, as_of: date, window: int) -> float:
    """The model's P(no engagement in the next ``window`` days) for ``person`` at ``as_of``."""
    gaps = [(b - a).days for a, b in pairwise(person.days)]
    return model.silent_probability(bucket_after(gaps), (as_of - person.days[-1]).days, window)


def _quality(scores: Sequence[float], outcomes: Sequence[int], probability: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"auc": round(auc(scores, outcomes), 4)}
    if probability:
        rows = reliability(scores, outcomes)
        result["brier"] = round(brier(scores, outcomes), 4)
        result["decile_max_deviation"] = round(max_deviation(rows), 4)
        result["deciles"] = [
            [row.count, round(row.mean_prediction, 4), round(row.observed_rate, 4)] for row in rows
        ]
    return result


def _care(scores: Sequence[float], outcomes: Sequence[int]) -> list[dict[str, float]]:
    """For each threshold: share of people flagged, precision, and share of leavers caught."""
    leavers = sum(outcomes)
    rows = []
    for threshold in THRESHOLDS:
        flagged = [y for s, y in zip(scores, outcomes, strict=True) if s >= threshold]
        rows.append(
            {
                "threshold": threshold,
                "flagged_share": round(len(flagged) / len(outcomes), 4),
                "precision": round(sum(flagged) / len(flagged), 4) if flagged else 0.0,
                "recall": round(sum(flagged) / leavers, 4) if leavers else 0.0,
            }
        )
    return rows


def run(size: int) -> Result:
    """Learn on one population, evaluate on another; one result line."""
    config = LifecycleConfig()
    window = config.inactivity_window_days
    populations = {}
    for role, seed in (("train", TRAIN_SEED), ("eval", EVAL_SEED)):
        params = SimulationParameters(people=size, days=SPAN_DAYS, seed=seed, erasure=False)
        as_of = (params.end - timedelta(days=window)).date() - timedelta(days=1)
        everyone = observe(lives_of(params), as_of, window)
        populations[role] = (as_of, everyone)
    train_as_of, train_all = populations["train"]
    as_of, eval_all = populations["eval"]
    model = learn(train_all, train_as_of)
    train = [p for p in train_all if (train_as_of - p.days[-1]).days < window]
    test = [p for p in eval_all if (as_of - p.days[-1]).days < window]
    outcomes = [int(p.silent_next) for p in test]
    base = sum(p.silent_next for p in train) / len(train)
    learned = [predict(model, p, as_of, window) for p in test]
    today = [todays_score(p.days, as_of, config) for p in test]
    silence = [float((as_of - p.days[-1]).days) for p in test]
    dead, silent_w, bg_params = bgnbd(train_all, train_as_of, test, as_of, window)
    measured = {
        "return_times": _quality(learned, outcomes, True),
        "return_times_care": _care(learned, outcomes),
    }
    bg = _quality(silent_w, outcomes, True)
    bg["auc_1_minus_p_alive"] = round(auc(dead, outcomes), 4)
    baseline = {
        "silence": _quality(silence, outcomes, False),
        "todays_score": _quality(today, outcomes, True),
        "bgnbd": bg,
        "base_rate": {
            "brier": round(brier([base] * len(test), outcomes), 4),
            "rate": round(base, 4),
        },
    }
    targets = {
        "auc_above_silence_by_0.02": measured["return_times"]["auc"]
        >= baseline["silence"]["auc"] + 0.02,
        "auc_at_least_bgnbd": measured["return_times"]["auc"] >= bg["auc"],
        "brier_below_base_rate": measured["return_times"]["brier"] < baseline["base_rate"]["brier"],
        "brier_below_todays_score": measured["return_times"]["brier"]
        < baseline["todays_score"]["brier"],
        "every_decile_within_0.05": measured["return_times"]["decile_max_deviation"] <= 0.05,
    }
    return Result(
        name=NAME,
        params={
            "people_per_population": size,
            "train_seed": TRAIN_SEED,
            "eval_seed": EVAL_SEED,
            "span_days": SPAN_DAYS,
            "as_of_day": SPAN_DAYS - window - 1,
            "window_days": window,
        },
        measured=measured,
        baseline=baseline,
        ratio=measured["return_times"]["auc"] / baseline["silence"]["auc"],
        ratio_meaning="AUC of the return-time model / AUC of days of silence alone",
        notes={
            "evaluated": len(test),
            "silent_next": sum(outcomes),
            "trained_on": len(train_all),
            "buckets": len(model.hazards),
            "bgnbd_params": {k: round(v, 4) for k, v in bg_params.items()},
            "targets_met": targets,
        },
    )
