"""The derived lifecycle view: a pure function of (person state, as_of, config).

``as_of`` is the stream's event-time watermark or a query parameter, never the wall
clock: replaying last year's events with last year's ``as_of`` gives last year's answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tenure.domain.activity import (
    device_use_days,
    engagement_days,
    first_activation_at,
    last_fact_at,
)
from tenure.domain.churn import NO_ENGAGEMENT, ChurnInputs, churn_inputs
from tenure.domain.config import LifecycleConfig
from tenure.domain.interaction import (
    active_subscriptions,
    cancelled_subscriptions,
    feedback_count,
    referral_count,
    was_referred,
)
from tenure.domain.lattice import DaySpan
from tenure.domain.level import Level, LevelInputs, relationship_level
from tenure.domain.person import Order, PersonState, consent_as_of
from tenure.domain.roles import gives_gifts, receives_gifts, sponsored_devices
from tenure.domain.segment import BuyerKind, Segment, buyer_kind_of, segment_of
from tenure.domain.spending import net_spend, paid_orders, refunded_orders
from tenure.domain.stage import Stage, StageTimeline, timeline_of
from tenure.domain.tags import TagInputs, profile_tags
from tenure.domain.tier import NO_TIER, member_tier, value_score

DEFAULT_CONFIG = LifecycleConfig()
"""The configuration with every documented default."""


@dataclass(frozen=True, slots=True)
class PersonView:
    """Everything the platform says about one person as of one instant."""

    person_id: str
    as_of: datetime
    erased: bool = False
    segment: Segment = Segment.PROSPECT
    buyer_kind: BuyerKind | None = None
    is_customer: bool = False
    is_user: bool = False
    is_sponsor: bool = False
    stage: Stage = Stage.NONE
    stage_since: datetime | None = None
    level: Level = Level.NONE
    is_super_user: bool = False
    tier: str = NO_TIER
    value_score: float = 0.0
    tags: tuple[str, ...] = ()
    churn: ChurnInputs = NO_ENGAGEMENT
    first_engagement_at: datetime | None = None
    last_engagement_at: datetime | None = None
    tenure_days: int = 0
    active_days: int = 0
    first_paid_order_at: datetime | None = None
    second_paid_order_at: datetime | None = None
    first_activation_at: datetime | None = None
    activation_delay_days: float | None = None
    activated_within_window: bool | None = None
    paid_order_count: int = 0
    net_spend: tuple[tuple[str, int], ...] = ()
    referral_count: int = 0
    feedback_count: int = 0
    devices_used: int = 0
    last_fact_at: datetime | None = None
    entry_path: str | None = None
    """How the person came in, decided at entry (see :func:`entry_path_of`)."""
    first_use_at: datetime | None = None
    """First use of a device as its user (start of the conversion clock)."""
    device_activation_at: datetime | None = None
    """First activation of a device the person uses, or first use of one they paid for."""
    products: tuple[str, ...] = ()
    """Products of the devices the person used or paid for, sorted."""
    cohort_week: date | None = None
    """Monday (UTC) of the week of the first engagement."""
    engaged_weeks: tuple[int, ...] = ()
    """Week indices since ``cohort_week`` with at least one engagement, ascending."""
    intended_hardware_at: datetime | None = None
    """First hardware meant for this person: an order with hardware they paid for themself,
    or a device in an order somebody else paid naming them as beneficiary (a gift)."""
    consent: tuple[tuple[str, bool], ...] = ()
    """Current consent per channel ``(channel, granted)``, by channel; a channel nobody
    spoke of is absent (not granted). See :func:`~tenure.domain.person.consent_as_of`."""


def absent_view(person_id: str, as_of: datetime) -> PersonView:
    """The view of a person nothing is known about."""
    return PersonView(person_id, as_of)


def _utc(as_of: datetime) -> datetime:
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    return as_of.astimezone(UTC)


def _stage_since(
    timeline: StageTimeline, today: date, days: dict[date, DaySpan]
) -> datetime | None:
    since = timeline.stage_since(today)
    if since is None:
        return None
    span = days.get(since)
    if span is not None and timeline.began_by_engagement(since):
        return span.first_at
    return datetime.combine(since, time(), UTC)


def _self_bought_hardware(state: PersonState, orders: list[Order]) -> datetime | None:
    for order in orders:
        for_self = order.beneficiary_id is None or order.beneficiary_id in state.members
        if for_self and any(item.category == "hardware" for item in order.items):
            return order.at
    return None


def _intended_hardware_at(
    state: PersonState, bought: datetime | None, as_of: datetime
) -> datetime | None:
    members = state.members
    gifted = [
        c.paid_at
        for c in state.contributions
        if c.beneficiary_id in members
        and c.payer_id not in (None, *members)
        and c.paid_at is not None
        and c.paid_at <= as_of
    ]
    return min([*gifted, *([] if bought is None else [bought])], default=None)


def _activation_window(
    bought: datetime | None, activated: datetime | None, as_of: datetime, config: LifecycleConfig
) -> tuple[float | None, bool | None]:
    if bought is None:
        return None, None
    window = timedelta(days=config.activation_window_days)
    if activated is not None:
        delay = round((activated - bought) / timedelta(days=1), 4)
        return delay, activated <= bought + window
    return None, (False if as_of >= bought + window else None)


CONNECTED_BUYER = "connected_buyer"
ONE_TIME_BUYER = "one_time_buyer"
NON_PAYING_USER = "non_paying_user"
ENTRY_PATHS: tuple[str, ...] = (CONNECTED_BUYER, ONE_TIME_BUYER, NON_PAYING_USER)
"""The entry paths compared by the survival analytics (``entry:<path>`` groups)."""


def entry_path_of(
    first_paid: datetime | None,
    first_use: datetime | None,
    activated: datetime | None,
    as_of: datetime,
    config: LifecycleConfig = DEFAULT_CONFIG,
) -> str | None:
    """The entry path, decided at entry so comparing tenure by it is not circular.

    * paid before (or without) using a device: a buyer. *connected buyer* if a device they
      use was activated, or a device they paid for was first used, within A days of the
      first paid order; *one-time buyer* once those A days passed without it; undecided
      (``None``) while the window is still open;
    * used a device before ever paying: *non-paying user* (later payments do not move them);
    * neither (only referrals or feedback): ``None``.
    """
    if first_paid is not None and (first_use is None or first_paid <= first_use):
        deadline = first_paid + timedelta(days=config.activation_window_days)
        if activated is not None and activated <= deadline:
            return CONNECTED_BUYER
        return ONE_TIME_BUYER if as_of >= deadline else None
    if first_use is not None:
        return NON_PAYING_USER
    return None


def _device_activation_at(state: PersonState, as_of: datetime) -> datetime | None:
    moments = [at for c in state.contributions for at in c.activations if at <= as_of]
    for c in state.contributions:
        if c.payer_id in state.members and c.paid_at is not None and c.paid_at <= as_of:
            moments += [at for at in c.device_users.values() if at <= as_of]
    return min(moments, default=None)


def _products(
    state: PersonState, used: dict[str, dict[date, DaySpan]], as_of: datetime
) -> tuple[str, ...]:
    members = state.members
    found = {
        c.product
        for c in state.contributions
        if c.product is not None
        and (
            c.device_id in used
            or (c.payer_id in members and c.paid_at is not None and c.paid_at <= as_of)
        )
    }
    return tuple(sorted(found))


def _weeks(day_list: Sequence[date]) -> tuple[date | None, tuple[int, ...]]:
    if not day_list:
        return None, ()
    start = day_list[0] - timedelta(days=day_list[0].weekday())
    return start, tuple(sorted({(d - start).days // 7 for d in day_list}))


def person_view_at(
    state: PersonState, as_of: datetime, config: LifecycleConfig = DEFAULT_CONFIG
) -> PersonView:
    """The lifecycle view of a (resolved) person state as of ``as_of``.

    Only facts at or before ``as_of`` count. An erased state yields an empty view with
    ``erased=True`` whatever ``as_of`` is: its facts are gone.
    """
    as_of = _utc(as_of)
    if state.erased:
        return PersonView(state.person_id, as_of, erased=True, last_fact_at=state.erased_at)
    days = engagement_days(state, as_of)
    today = as_of.date()
    timeline = timeline_of(days, config)
    day_list = timeline.days
    orders = paid_orders(state, as_of)
    used = device_use_days(state, as_of)
    spend = net_spend(state, as_of)
    referrals = referral_count(state, as_of)
    feedback = feedback_count(state, as_of)
    sponsored = sponsored_devices(state, as_of)
    activated = first_activation_at(state, as_of)
    tenure = (day_list[-1] - day_list[0]).days if day_list else 0
    level = relationship_level(
        LevelInputs(len(orders), len(day_list), tenure, feedback, referrals), config
    )
    buyer_kind = buyer_kind_of(len(orders), config.repeat_purchase_min_orders)
    score = value_score(spend, len(day_list), referrals, feedback, config)
    bought = _self_bought_hardware(state, orders)
    delay, within = _activation_window(bought, activated, as_of, config)
    first_use = min((s.first_at for d in used.values() for s in d.values()), default=None)
    device_activation = _device_activation_at(state, as_of)
    cohort, weeks = _weeks(day_list)
    tags = TagInputs(
        gift_payer=gives_gifts(state, as_of),
        gift_recipient=receives_gifts(state, as_of),
        sponsor=bool(sponsored),
        referrer=referrals > 0,
        referred=was_referred(state, as_of),
        feedback_giver=feedback > 0,
        subscriber=bool(active_subscriptions(state, as_of)),
        subscription_cancelled=bool(cancelled_subscriptions(state, as_of)),
        hardware_owner=bought is not None or activated is not None,
        multi_device=len(used) >= 2,
        never_activated=within is False and not used and not sponsored,
        refunded=bool(refunded_orders(state, as_of)),
        repeat_buyer=buyer_kind is BuyerKind.REPEAT_BUYER,
        super_user=level is Level.SUPER,
    )
    return PersonView(
        person_id=state.person_id,
        as_of=as_of,
        segment=segment_of(bool(orders), bool(used)),
        buyer_kind=buyer_kind,
        is_customer=bool(orders),
        is_user=bool(used),
        is_sponsor=bool(sponsored),
        stage=timeline.stage_on(today),
        stage_since=_stage_since(timeline, today, days),
        level=level,
        is_super_user=level is Level.SUPER,
        tier=member_tier(score, config),
        value_score=score,
        tags=profile_tags(tags),
        churn=churn_inputs(day_list, today),
        first_engagement_at=days[day_list[0]].first_at if day_list else None,
        last_engagement_at=days[day_list[-1]].last_at if day_list else None,
        tenure_days=tenure,
        active_days=len(day_list),
        first_paid_order_at=orders[0].at if orders else None,
        second_paid_order_at=orders[1].at if len(orders) > 1 else None,
        first_activation_at=activated,
        activation_delay_days=delay,
        activated_within_window=within,
        paid_order_count=len(orders),
        net_spend=tuple(spend.items()),
        referral_count=referrals,
        feedback_count=feedback,
        devices_used=len(used),
        last_fact_at=last_fact_at(state, as_of),
        entry_path=entry_path_of(
            orders[0].at if orders else None, first_use, device_activation, as_of, config
        ),
        first_use_at=first_use,
        device_activation_at=device_activation,
        products=_products(state, used, as_of),
        cohort_week=cohort,
        engaged_weeks=weeks,
        intended_hardware_at=_intended_hardware_at(state, bought, as_of),
        consent=tuple(consent_as_of(state, as_of).items()),
    )
