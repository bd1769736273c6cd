"""Engagement of a person as of an instant: the active-days set and its spans.

Engagement = using a device as its user (activation or use), completing a payment,
completing a referral as referrer, or submitting feedback. Only moments at or before
``as_of`` count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from tenure.domain.lattice import DaySpan
from tenure.domain.person import PersonState


def clamp(span: DaySpan, as_of: datetime) -> DaySpan | None:
    """The part of a day span known at ``as_of`` (``None`` if it starts later).

    A span whose end lies after ``as_of`` shrinks to its first moment: the moments in
    between are not individually known.
    """
    if span.first_at > as_of:
        return None
    return span if span.last_at <= as_of else DaySpan.at(span.first_at)


def _add(days: dict[date, DaySpan], span: DaySpan | None) -> None:
    if span is not None:
        current = days.get(span.day)
        days[span.day] = span if current is None else current.join(span)


_UseDays = dict[str, dict[date, DaySpan]]
_last_use_days: tuple[object, datetime | None, _UseDays] = (None, None, {})
_last_engagement: tuple[object, datetime | None, dict[date, DaySpan]] = (None, None, {})
# The last answer of each function below, by state identity and ``as_of``: deriving one
# person asks for the same days several times (the view, then the churn model's queue).
# States are immutable; callers must not mutate the dicts returned.


def device_use_days(state: PersonState, as_of: datetime) -> dict[str, dict[date, DaySpan]]:
    """Per device, the days this person used it as its user, as of ``as_of``."""
    global _last_use_days
    last = _last_use_days
    if last[0] is state and last[1] == as_of:
        return last[2]
    result: dict[str, dict[date, DaySpan]] = {}
    for contribution in state.contributions:
        spans = contribution.days  # keyed by each span's day
        if contribution.device_id not in result and all(
            span.last_at <= as_of for span in spans.values()
        ):  # the common case: a device's first contribution, every span counting whole
            result[contribution.device_id] = dict(spans)
            continue
        per_day = result.setdefault(contribution.device_id, {})
        for day, span in spans.items():
            if span.last_at > as_of:  # as :func:`clamp`
                if span.first_at > as_of:
                    continue
                span = DaySpan.at(span.first_at)
            current = per_day.get(day)
            per_day[day] = span if current is None else current.join(span)
    answer = {device: days for device, days in sorted(result.items()) if days}
    _last_use_days = (state, as_of, answer)
    return answer


def own_moments(state: PersonState) -> Iterable[datetime]:
    """Engagement moments from the person's own facts (payments, referrals, feedback)."""
    yield from (order.at for order in state.orders.values())
    yield from (at for referee, at in state.referrals_made.items() if referee not in state.members)
    yield from state.feedback.values()


def engagement_days(state: PersonState, as_of: datetime) -> dict[date, DaySpan]:
    """The active-days set: every engagement day up to ``as_of``, sorted, with spans."""
    global _last_engagement
    last = _last_engagement
    if last[0] is state and last[1] == as_of:
        return last[2]
    days: dict[date, DaySpan] = {}
    for moment in own_moments(state):
        _add(days, clamp(DaySpan.at(moment), as_of))
    for per_device in device_use_days(state, as_of).values():
        for day, span in per_device.items():
            current = days.get(day)
            days[day] = span if current is None else current.join(span)
    answer = dict(sorted(days.items()))
    _last_engagement = (state, as_of, answer)
    return answer


def first_activation_at(state: PersonState, as_of: datetime) -> datetime | None:
    """The first device activation by this person at or before ``as_of``."""
    moments = (at for c in state.contributions for at in c.activations if at <= as_of)
    return min(moments, default=None)


def fact_moments(state: PersonState) -> list[datetime]:
    """Every instant at which a fact of ``state`` starts to count: its payments, refunds,
    gifts, referrals, feedback, cancellations, consent changes, and each device
    contribution's day spans (first and last use), activations, payment and users."""
    moments: list[datetime] = [o.at for o in state.orders.values()]
    moments += [r.at for r in state.refunds.values()]
    moments += [g.at for g in state.gifts_received.values()]
    moments += state.referrals_made.values()
    moments += state.referred_by.values()
    moments += state.feedback.values()
    moments += [c.at for c in state.cancellations.values()]
    moments += [c.at for c in state.consent.values()]
    for contribution in state.contributions:
        spans = contribution.days.values()
        moments += [s.first_at for s in spans]
        moments += [s.last_at for s in spans]
        moments += contribution.activations
        if contribution.paid_at is not None:
            moments.append(contribution.paid_at)
        moments += contribution.device_users.values()
    return moments


_last_fact_bounds: tuple[object, datetime | None, tuple[datetime | None, datetime | None]] = (
    None,
    None,
    (None, None),
)
"""The last answer of :func:`fact_bounds`, by state identity and ``as_of`` (the view asks
for the latest fact, its schedule for the next one)."""


def fact_bounds(state: PersonState, as_of: datetime) -> tuple[datetime | None, datetime | None]:
    """The latest fact instant at or before ``as_of`` and the earliest after it (``None``:
    there is none)."""
    global _last_fact_bounds
    last = _last_fact_bounds
    if last[0] is state and last[1] == as_of:
        return last[2]
    moments = fact_moments(state)
    answer = (
        max((m for m in moments if m <= as_of), default=None),
        min((m for m in moments if m > as_of), default=None),
    )
    _last_fact_bounds = (state, as_of, answer)
    return answer


def last_fact_at(state: PersonState, as_of: datetime) -> datetime | None:
    """The latest event time of any fact about the person at or before ``as_of``."""
    return fact_bounds(state, as_of)[0]
