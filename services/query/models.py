"""Response models of the query API: what every route answers, typed for the OpenAPI document.

The labels (segment, buyer kind, stage, level) are the domain's enums, so the document and
generated clients list exactly the values the projection derives. Tiers are configured
(``LifecycleConfig.tier_thresholds``, by default bronze, silver, gold, platinum, or ``none``
below the first), so a tier is a string. The survival routes answer with orjson directly;
their models here describe those bodies field for field (``None`` where a figure is
undefined, e.g. a median never reached).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from tenure.domain.level import Level
from tenure.domain.segment import BuyerKind, Segment
from tenure.domain.stage import Stage
from tenure.domain.tier import NO_TIER
from tenure.domain.view import DEFAULT_CONFIG

TIER_DOC = (
    "Member tier (configured; by default "
    + ", ".join([NO_TIER, *(name for name, _ in DEFAULT_CONFIG.tier_thresholds)])
    + ")."
)


class ChurnInputs(BaseModel):
    """What ``churn_risk`` was computed from (docs/lifecycle.md, "Churn risk")."""

    as_of: date = Field(description="UTC day the risk was computed at.")
    window_days: int = Field(description="W: the risk is P(no engagement in the next W days).")
    silence_days: int | None = Field(description="Days since the last engagement day.")
    bucket: str | None = Field(description="Return-time bucket: group/rhythm/experience.")
    curve: str | None = Field(description="The bucket whose curve the estimate came from.")
    gaps_at_risk: int | None = Field(description="How many gaps that curve rests on.")


class Person(BaseModel):
    """One person's lifecycle view (a row of the ``persons`` read model)."""

    person_id: str
    as_of: datetime
    aliases: list[str]
    segment: Segment
    buyer_kind: BuyerKind | None
    is_customer: bool
    is_user: bool
    is_sponsor: bool
    stage: Stage
    stage_since: datetime | None
    level: Level
    is_super_user: bool
    tier: str = Field(description=TIER_DOC)
    value_score: float
    tags: list[str]
    churn_risk: float | None = Field(
        description="P(no engagement in the next W days) at `churn_inputs.as_of`, from the "
        "live return-time model; null without engagement or before the model has learned."
    )
    churn_inputs: ChurnInputs
    first_engagement_at: datetime | None
    last_engagement_at: datetime | None
    tenure_days: int
    active_days: int
    first_paid_order_at: datetime | None
    second_paid_order_at: datetime | None
    first_activation_at: datetime | None
    activation_delay_days: float | None
    activated_within_window: bool | None
    paid_order_count: int
    net_spend_minor: dict[str, int] = Field(description="Net spend per currency, minor units.")
    referral_count: int
    feedback_count: int
    devices_used: int
    last_fact_at: datetime | None
    entry_path: str | None
    first_use_at: datetime | None
    device_activation_at: datetime | None
    products: list[str]
    cohort_week: date | None
    engaged_weeks: list[int]
    consent: dict[str, bool] = Field(
        description="Current consent per channel (email, push, sms, in_app) from "
        '`person.consent_changed`, last writer by event time (docs/lifecycle.md, "Consent"); '
        "a channel absent here was never spoken of: do not contact on it."
    )


class Device(BaseModel):
    """One device's view (a row of the ``devices`` read model)."""

    device_id: str
    product: str | None
    user_id: str | None
    payer_id: str | None
    beneficiary_id: str | None
    is_sponsored: bool
    activated_at: datetime | None
    first_use_at: datetime | None
    last_use_at: datetime | None
    active_days: int
    deactivated_at: datetime | None


class PersonPage(BaseModel):
    """A page of persons in id order; ``next`` is the cursor of the next page, if any."""

    persons: list[Person]
    next: str | None


class SurvivalPoint(BaseModel):
    """The Kaplan-Meier estimate on one day, with its band and the number at risk."""

    day: int
    survival: float
    ci_low: float | None
    ci_high: float | None
    at_risk: int


class SurvivalGroup(BaseModel):
    """One group's tenure curve, median with CI and restricted mean."""

    group: str
    n: int
    events: int
    censored: int
    median_days: float | None
    median_ci: list[float | None] = Field(min_length=2, max_length=2)
    rmst_days: float | None
    rmst_horizon_days: int
    curve: list[SurvivalPoint]


class LogRank(BaseModel):
    """The log-rank test between the two groups asked for."""

    groups: list[str]
    statistic: float | None
    p_value: float | None


class SurvivalAnswer(BaseModel):
    """``/v1/tenure/survival``."""

    as_of: datetime | None
    window_days: int
    confidence: float
    ci_transform: str
    groups: list[SurvivalGroup]
    logrank: LogRank | None


class Cohort(BaseModel):
    """One weekly cohort: size and, per week since its start, shares and counts engaged."""

    cohort: date
    size: int
    on: list[float]
    on_or_after: list[float]
    on_count: list[int]
    on_or_after_count: list[int]


class RetentionGroup(BaseModel):
    """The cohorts of one group."""

    group: str
    cohorts: list[Cohort]


class RetentionAnswer(BaseModel):
    """``/v1/tenure/retention``."""

    as_of: datetime | None
    groups: list[RetentionGroup]


class MilestonePoint(BaseModel):
    """The cumulative share that reached the milestone by one day, with its band."""

    day: int
    share: float
    ci_low: float | None
    ci_high: float | None
    at_risk: int


class MilestoneGroup(BaseModel):
    """One group's time-to-milestone curve and window rate."""

    group: str
    n: int
    count: int
    rate: float | None
    eligible: int
    curve: list[MilestonePoint]


class MilestoneAnswer(BaseModel):
    """``/v1/tenure/activation``, ``/conversion`` and ``/repeat``."""

    as_of: datetime | None
    window_days: int
    confidence: float
    groups: list[MilestoneGroup]


class FunnelStep(BaseModel):
    """One step of a funnel and how many people reached it."""

    step: str
    count: int


class Funnels(BaseModel):
    """The activation and conversion funnels."""

    activation: list[FunnelStep]
    conversion: list[FunnelStep]


class Backlog(BaseModel):
    """Persons and devices waiting to be re-derived."""

    persons: int
    devices: int


class LastReplay(BaseModel):
    """The last ``tenure replay``."""

    as_of: datetime | None
    archive_seq: int
    events: int
    completed_at: datetime | None


class PipelineHealth(BaseModel):
    """How far the pipeline has come."""

    read_at: datetime
    archived_events: int
    last_archived_at: datetime | None
    projection_max_event_time: datetime | None
    backlog: Backlog
    transitions_emitted: int
    transitions_unpublished: int
    last_replay: LastReplay | None


class AudienceSizeRow(BaseModel):
    """One current audience's size: contactable members and suppressed ones by reason."""

    name: str
    channel: str
    members: int
    contactable: int
    suppressed: dict[str, int] = Field(description="Members not to contact now, by reason.")


class AudienceFlow(BaseModel):
    """One audience's membership changes on one UTC day (of the change's instant)."""

    day: date
    audience: str
    entered: int
    exited: int
    suppression_changed: int


class DashboardSummary(BaseModel):
    """``/v1/dashboard/summary``: counts, funnels and pipeline health (no person id)."""

    persons: int
    segments: dict[Segment, int]
    stages: dict[Stage, int]
    levels: dict[Level, int]
    tiers: dict[str, int]
    as_of: datetime | None
    buyer_kinds: dict[BuyerKind, int]
    one_time_buyers: int
    super_users: int
    sponsors: int
    funnels: Funnels
    pipeline: PipelineHealth
    analytics: dict[str, bool] = Field(description="Which analytics routes this service has.")
    audiences: list[AudienceSizeRow] = Field(description="Current audiences, by name.")
    audience_flows: list[AudienceFlow] = Field(
        description="Entries, exits and suppression changes per audience and day, over the "
        "30 days up to the latest change, in day order."
    )


class PersonChange(Person):
    """A changed person, as the list shows it, with the token that keys it downstream."""

    person_token: str = Field(
        description="The person's token (as transitions and tenure.persons.v1 carry it)."
    )


class PersonChanges(BaseModel):
    """``/v1/persons?updated_since=``: the persons changed after the cursor, in change order,
    the tokens of persons removed since (merged into another person, or erased), and the
    cursor to ask with next (always set; the same one when nothing changed)."""

    persons: list[PersonChange]
    removed: list[str]
    next: str
