"""The backtest scores people at an earlier cut day and reads the outcome after it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tenure.analytics.churn_backtest import backtest, learn, not_churned, observe, predict

DAY0 = date(2025, 1, 1)


def days(*offsets: int) -> list[date]:
    return [DAY0 + timedelta(days=o) for o in offsets]


def test_observe_cuts_the_days_and_reads_the_outcome_after_the_cut() -> None:
    histories = [
        (days(0, 1, 2, 12), "*"),  # silent 8 days at the cut (day 10), returns on day 12
        (days(0, 5), "*"),  # silent 5 days at the cut, never returns
        (days(11), "*"),  # not known yet at the cut
        (days(0, 3, 50), "g"),  # returns after the window
    ]
    people = observe(histories, DAY0 + timedelta(days=10), window=30)
    assert [(p.days, p.silent_next, p.group) for p in people] == [
        (tuple(days(0, 1, 2)), False, "*"),
        (tuple(days(0, 5)), True, "*"),
        (tuple(days(0, 3)), True, "g"),
    ]
    assert len(not_churned(people, DAY0 + timedelta(days=10), window=6)) == 1


def test_backtest_of_regular_users_and_leavers() -> None:
    # Weekly users who stay for a year, weekly users who left by day 90.
    stay = [(days(*range(s, 365, 7)), "*") for s in range(7)]
    leave = [(days(*range(s, 90, 7)), "*") for s in range(7)]
    result = backtest(stay * 5 + leave * 5, DAY0 + timedelta(days=130), window=30)
    assert result.cut == DAY0 + timedelta(days=100)
    assert result.people == 70 and result.silent_next == 35
    assert result.auc == 1.0  # silent 10+ days: gone; weekly users always came back by 7
    assert sum(row.count for row in result.deciles) == 70
    model = learn(observe(stay, DAY0 + timedelta(days=100), 30), DAY0 + timedelta(days=100))
    regular = observe(stay, DAY0 + timedelta(days=100), 30)[0]
    assert predict(model, regular, DAY0 + timedelta(days=100), 30) == pytest.approx(0.0, abs=0.01)


def test_a_backtest_with_nobody_scores_nothing() -> None:
    result = backtest([], DAY0, 30)
    assert (result.people, result.auc, result.brier, result.deciles) == (0, None, None, ())
