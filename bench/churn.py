"""Churn warning quality: does the learned churn probability beat recency, BG/NBD and today's score?

A simulated population (seed ``TRAIN_SEED``) is observed up to day T of its span; the
return-time model learns from its engagement histories as of T (nothing after T). A second
population (``EVAL_SEED``, never seen by the model) is observed to its own day T; among the
people not churned at T (engaged at least once, silent less than W days), the outcome is
"no engagement in (T, T + W]", known from the simulation. Every method scores the same
people in the same run:

* ``return_times``: the model of ``tenure/analytics/return_times.py``;
* ``todays_score``: :func:`silence_score`, the hand-tuned logistic the view stored as
  ``churn_risk`` before issue 15 (retired from the view; kept here as a baseline);
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
import statistics
import warnings
from collections.abc import Sequence
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from bench.result import Result
from tenure.analytics.calibration import auc, brier, max_deviation, reliability
from tenure.analytics.churn_backtest import (
    Observed,
    backtest,
    learn,
    not_churned,
    observe,
    predict,
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


def engagement_days(life: Life) -> list[date]:
    """The person's engagement days (UTC) from the events of their life."""
    return sorted({h.time.date() for h in life.happenings if h.type in ENGAGEMENT_TYPES})


SILENCE_SCORE_DEFAULT_GAP_DAYS = 7.0
"""The retired score's usual gap for a person with fewer than two engagement days."""
SILENCE_SCORE_STEEPNESS = 1.5
"""k: the retired score's logistic steepness."""
SILENCE_SCORE_MIDPOINT = 3.0
"""r0: the silence / usual-gap ratio where the retired score's logistic is 0.5."""


def silence_score(days: Sequence[date], today: date, window: int) -> float:
    """The retired hand-tuned score: how unusual the silence is, in [0, 1] (not a probability).

    With s the silence, g the median gap between consecutive days (or the default), and
    r = s / max(g, 1): ``round(max(1 / (1 + exp(-k (r - r0))), min(1, s / W)), 4)``; 0
    without engagement. It saturates (a 2-day rhythm silent 9 days scores 0.90), which is
    why issue 15 replaced it with the probability (docs/lifecycle.md, "Churn risk").
    """
    known = sorted({day for day in days if day <= today})
    if not known:
        return 0.0
    silence = (today - known[-1]).days
    gaps = [(later - earlier).days for earlier, later in pairwise(known)]
    usual = float(statistics.median(gaps)) if gaps else SILENCE_SCORE_DEFAULT_GAP_DAYS
    ratio = silence / max(usual, 1.0)
    exponent = min(-SILENCE_SCORE_STEEPNESS * (ratio - SILENCE_SCORE_MIDPOINT), 700.0)
    return round(max(1.0 / (1.0 + math.exp(exponent)), min(1.0, silence / window)), 4)


def _bgnbd_summary(
    people: Sequence[Observed], as_of: date
) -> tuple[list[int], list[int], list[int]]:
    frequency = [len(p.days) - 1 for p in people]
    recency = [(p.days[-1] - p.days[0]).days for p in people]
    age = [(as_of - p.days[0]).days for p in people]
    return frequency, recency, age


def bgnbd(
    train: Sequence[Observed], train_as_of: date, test: Sequence[Observed], as_of: date, window: int
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
        histories = [(engagement_days(life), "*") for life in lives_of(params)]
        populations[role] = (as_of, observe(histories, as_of, window))
        if role == "eval":  # the live backtest: learn from its own days up to T, no seed change
            own = backtest(histories, as_of + timedelta(days=window), window)
    train_as_of, train_all = populations["train"]
    as_of, eval_all = populations["eval"]
    model = learn(train_all, train_as_of)
    train = not_churned(train_all, train_as_of, window)
    test = not_churned(eval_all, as_of, window)
    outcomes = [int(p.silent_next) for p in test]
    base = sum(p.silent_next for p in train) / len(train)
    learned = [predict(model, p, as_of, window) for p in test]
    today = [silence_score(p.days, as_of, window) for p in test]
    silence = [float((as_of - p.days[-1]).days) for p in test]
    dead, silent_w, bg_params = bgnbd(train_all, train_as_of, test, as_of, window)
    measured: dict[str, Any] = {
        "return_times": _quality(learned, outcomes, True),
        "return_times_care": _care(learned, outcomes),
    }
    bg = _quality(silent_w, outcomes, True)
    bg["auc_1_minus_p_alive"] = round(auc(dead, outcomes), 4)
    baseline: dict[str, dict[str, Any]] = {
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
            "own_history_backtest": {
                "auc": None if own.auc is None else round(own.auc, 4),
                "brier": None if own.brier is None else round(own.brier, 4),
                "decile_max_deviation": round(max_deviation(own.deciles), 4),
                "people": own.people,
            },
        },
    )
