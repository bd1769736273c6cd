"""Stage by event time: moving as_of alone moves the stage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain import LifecycleConfig, Stage
from tenure.domain.stage import StageTimeline, timeline_of

from .scenario import T0, activated, at, used
from .views import view_of

DAILY = [activated("d1", "p", 0), *(used("d1", n) for n in range(1, 36))]


def midnight(day: int) -> datetime:
    return datetime.combine(
        T0.date().fromordinal(T0.date().toordinal() + day), datetime.min.time(), UTC
    )


def test_new_within_the_window_of_the_first_engagement() -> None:
    view = view_of(DAILY, "p", 5)
    assert view.stage is Stage.NEW
    assert view.stage_since == at(0)


def test_stage_moves_active_at_risk_churned_by_advancing_as_of() -> None:
    assert view_of(DAILY, "p", 36).stage is Stage.ACTIVE
    assert view_of(DAILY, "p", 36).stage_since == midnight(30)
    assert view_of(DAILY, "p", 49).stage is Stage.ACTIVE
    at_risk = view_of(DAILY, "p", 50)
    assert at_risk.stage is Stage.AT_RISK
    assert at_risk.stage_since == midnight(50)
    assert view_of(DAILY, "p", 64).stage is Stage.AT_RISK
    churned = view_of(DAILY, "p", 65)
    assert churned.stage is Stage.CHURNED
    assert churned.stage_since == midnight(65)
    assert churned.churn.silence_days == 30  # the churn probability's input


def test_new_person_silent_for_half_the_window_is_at_risk() -> None:
    assert view_of([activated("d1", "p", 0)], "p", 15).stage is Stage.AT_RISK
    assert view_of([activated("d1", "p", 0)], "p", 14).stage is Stage.NEW


def test_resurrected_after_a_gap_of_the_window_then_active() -> None:
    comeback = [*DAILY, used("d1", 80)]
    view = view_of(comeback, "p", 81)
    assert view.stage is Stage.RESURRECTED
    assert view.stage_since == at(80)
    assert view_of(comeback, "p", 79).stage is Stage.CHURNED
    staying = [*comeback, *(used("d1", n) for n in range(81, 120))]
    assert view_of(staying, "p", 109).stage is Stage.RESURRECTED
    assert view_of(staying, "p", 110).stage is Stage.ACTIVE


def test_gap_shorter_than_the_window_is_not_a_resurrection() -> None:
    events = [*DAILY, used("d1", 60)]
    assert view_of(events, "p", 61).stage is Stage.ACTIVE


def test_engagement_after_as_of_does_not_count() -> None:
    view = view_of(DAILY, "p", 10)
    assert view.active_days == 11
    assert view.last_engagement_at == at(10)


def test_nobody_has_stage_none() -> None:
    assert view_of([activated("d1", "p", 5)], "p", 1).stage is Stage.NONE


def test_window_is_configurable() -> None:
    short = LifecycleConfig(inactivity_window_days=10)
    assert view_of(DAILY, "p", 45, short).stage is Stage.CHURNED
    assert view_of(DAILY, "p", 40, short).stage is Stage.AT_RISK


def _stage_since_over_every_candidate(
    timeline: StageTimeline, days: list[date], config: LifecycleConfig, today: date
) -> date | None:
    """The definition ``stage_since`` had before it listed turning days: walk back over
    every ``d``, ``d + R`` and ``d + W`` up to ``today``."""
    current = timeline.stage_on(today)
    if current is Stage.NONE:
        return None
    offsets = [timedelta(0), timedelta(days=config.at_risk_days),
               timedelta(days=config.inactivity_window_days)]  # fmt: skip
    candidates = sorted({d + o for d in days for o in offsets if d + o <= today})
    since = candidates[-1]
    for candidate in reversed(candidates[:-1]):
        if timeline.stage_on(candidate) is not current:
            break
        since = candidate
    return since


@settings(max_examples=400)
@given(
    st.lists(st.integers(0, 400), max_size=60),
    st.integers(0, 500),
    st.integers(2, 60),
    st.floats(0.01, 0.99),
)
def test_stage_since_equals_the_walk_over_every_candidate_day(
    offsets: list[int], today: int, window: int, fraction: float
) -> None:
    config = LifecycleConfig(inactivity_window_days=window, at_risk_fraction=fraction)
    days = [T0.date() + timedelta(days=n) for n in offsets]
    timeline = StageTimeline(days, config)
    day = T0.date() + timedelta(days=today)
    assert timeline.stage_since(day) == _stage_since_over_every_candidate(
        timeline, days, config, day
    )


@given(st.lists(st.lists(st.integers(0, 400), max_size=30), min_size=1, max_size=6))
def test_a_timeline_asked_for_again_is_the_one_of_those_days(runs: list[list[int]]) -> None:
    """``timeline_of`` reuses a timeline only for the same days object and config asked for
    in a row; whatever the order of asking, each answer equals a timeline built afresh."""
    config = LifecycleConfig(inactivity_window_days=14)
    other = LifecycleConfig(inactivity_window_days=30)
    mappings = [{T0.date() + timedelta(days=n): None for n in sorted(set(run))} for run in runs]
    for days in [*mappings, *mappings, *reversed(mappings)]:
        for cfg in (config, config, other):
            timeline = timeline_of(days, cfg)
            fresh = StageTimeline(list(days), cfg)
            for n in range(0, 460, 7):
                day = T0.date() + timedelta(days=n)
                assert timeline.stage_on(day) is fresh.stage_on(day)
    again = mappings[-1]
    assert timeline_of(again, other) is timeline_of(again, other)
