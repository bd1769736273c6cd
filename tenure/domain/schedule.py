"""When a derived view next changes by the passage of time alone (no new facts).

A view is a pure function of (state, as_of, config). With the state fixed, it depends on
``as_of`` in exactly these ways (``tenure/domain/view.py`` and the modules it reads):

1. **facts dated after ``as_of``** (events inside the allowed lateness, or a day span whose
   end lies after ``as_of``): each counts from its instant on (``at <= as_of``), and the
   view's ``last_fact_at`` moves to it, so every such instant changes the view;
2. **the stage** (and ``stage_since``) by the UTC day of ``as_of``: with engagement days D,
   first F, last L, latest comeback C, the stage can only move on day L + R (at risk),
   L + W (churned), F + W (new ends) or C + W (resurrected ends), at midnight UTC;
3. **the activation window** of a person who bought hardware for themself and has not
   activated: ``activated_within_window`` (and the ``never_activated`` tag) turn false at
   purchase + A, to the instant;
4. **the entry path** of a buyer still undecided: one-time buyer at first paid order + A;
5. **churn inputs** (silence days): they change every day while a person is silent,
   forever, so it is *not* scheduled (that would make every engaged person due every day).
   What only facts change (last engagement day, return-time bucket) is stored and readers
   age the silence to their instant with :func:`~tenure.domain.churn.churn_inputs_at` (the
   churn probability itself is computed at read time from the live model).

Level, tier, segment, tenure days (last minus first engagement day), active days, cohort
and products depend on ``as_of`` only through facts (case 1). So with ``t`` =
:func:`next_change_at`, the view at any instant in ``[as_of, t)`` equals the view at
``as_of`` except ``as_of`` itself and the churn inputs, and the view at ``t`` differs
(property-tested in ``tests/unit/domain/test_schedule.py``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

from tenure.domain.activity import engagement_days, fact_bounds
from tenure.domain.config import LifecycleConfig
from tenure.domain.person import PersonState
from tenure.domain.spending import paid_orders
from tenure.domain.stage import StageTimeline, timeline_of
from tenure.domain.view import PersonView, _self_bought_hardware


def next_fact_at(state: PersonState, as_of: datetime) -> datetime | None:
    """The earliest fact instant after ``as_of`` (``None``: every fact already counts)."""
    return fact_bounds(state, as_of)[1]


def next_stage_day(timeline: StageTimeline, today: date, config: LifecycleConfig) -> date | None:
    """The first day after ``today`` whose stage differs from today's, the timeline's
    engagement days (none after ``today``) staying as they are; ``None``: never."""
    days = timeline.days
    if not days:
        return None
    current = timeline.stage_on(today)
    window = timedelta(days=config.inactivity_window_days)
    at_risk = timedelta(days=config.at_risk_days)
    candidates = {days[-1] + at_risk, days[-1] + window, days[0] + window}
    candidates |= {d + window for before, d in pairwise(days) if d - before >= window}
    for day in sorted(c for c in candidates if c > today):
        if timeline.stage_on(day) is not current:
            return day
    return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def next_change_at(
    state: PersonState, view: PersonView, config: LifecycleConfig
) -> datetime | None:
    """The earliest instant after ``view.as_of`` at which the view of ``state`` changes
    with no new facts (``None``: never; churn inputs excepted, see the module docstring).

    ``view`` must be ``person_view_at(state, view.as_of, config)``.
    """
    if state.erased:
        return None
    as_of = view.as_of
    window = timedelta(days=config.activation_window_days)
    found: list[datetime] = []
    if (fact := next_fact_at(state, as_of)) is not None:
        found.append(fact)
    engaged = engagement_days(state, as_of)
    timeline = timeline_of(engaged, config)
    if (day := next_stage_day(timeline, as_of.date(), config)) is not None:
        found.append(_midnight(day))
    if view.activated_within_window is None:
        bought = _self_bought_hardware(state, paid_orders(state, as_of))
        if bought is not None:
            found.append(bought + window)
    first_paid, first_use = view.first_paid_order_at, view.first_use_at
    undecided_buyer = first_paid is not None and (first_use is None or first_paid <= first_use)
    if view.entry_path is None and first_paid is not None and undecided_buyer:
        found.append(first_paid + window)
    later = [t for t in found if t > as_of]
    return min(later, default=None)
