"""Request and response models of the audience routes (``docs/audiences.md``).

The filter terms take the domain's enums (segments, stages, levels) and patterns built from
the domain's names (entry paths, tags, roles, tiers, contacts), so the OpenAPI document lists
exactly the values :func:`tenure.domain.audience.parse_audience` accepts; what a schema cannot
say (``min`` <= ``max``, a tag both required and excluded) is refused by the parse, 422.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from tenure.domain.audience import (
    CONTACTS,
    MAX_DAYS,
    NAME_PATTERN,
    ROLES,
    SUPPRESSION_REASONS,
    Channel,
)
from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.domain.tags import TAG_NAMES
from tenure.domain.tier import NO_TIER
from tenure.domain.view import DEFAULT_CONFIG, ENTRY_PATHS


def _one_of(names: Iterable[str]) -> str:
    return "^(" + "|".join(names) + ")$"


EntryPath = Annotated[str, Field(pattern=_one_of(ENTRY_PATHS))]
Tag = Annotated[str, Field(pattern=_one_of(TAG_NAMES))]
Role = Annotated[str, Field(pattern=_one_of(ROLES))]
Tier = Annotated[
    str, Field(pattern=_one_of([NO_TIER, *(n for n, _ in DEFAULT_CONFIG.tier_thresholds)]))
]
Product = Annotated[str, Field(pattern=r"^\S{1,200}$")]
Reason = Literal["erased", "no_consent", "quiet_period"]
assert SUPPRESSION_REASONS == ("erased", "no_consent", "quiet_period")
NAME_DOC = "Audience name: lower-case letters, digits and '-', starting with a letter."
NAME_REGEX = f"^{NAME_PATTERN.pattern}$"


class _Terms(BaseModel):
    """Terms left out (``None``) are no constraint: answered as absent, as written."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _without_absent_terms(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class DayRange(_Terms):
    """Whole days elapsed since an instant, inclusive; leave out an end for no bound."""

    min: int | None = Field(None, ge=0, le=MAX_DAYS)
    max: int | None = Field(None, ge=0, le=MAX_DAYS)


class RiskRange(_Terms):
    """A churn-risk probability range, inclusive; leave out an end for no bound."""

    min: float | None = Field(None, ge=0.0, le=1.0)
    max: float | None = Field(None, ge=0.0, le=1.0)


class AudienceFilter(_Terms):
    """Who is in the audience: every term given must hold (docs/audiences.md, "Language")."""

    segment: list[Segment] | None = Field(None, min_length=1, description="Any of.")
    entry_path: list[EntryPath] | None = Field(None, min_length=1, description="Any of.")
    stage: list[Stage] | None = Field(None, min_length=1, description="Any of.")
    level: list[Level] | None = Field(None, min_length=1, description="Any of.")
    tier: list[Tier] | None = Field(None, min_length=1, description="Any of.")
    tags: list[Tag] | None = Field(None, min_length=1, description="All of.")
    without_tags: list[Tag] | None = Field(None, min_length=1, description="None of.")
    products: list[Product] | None = Field(None, min_length=1, description="Any of.")
    roles: list[Role] | None = Field(None, min_length=1, description="Any of.")
    activated: bool | None = Field(
        None, description="A device the person uses was activated or used, or one they paid "
        "for was used.",
    )  # fmt: skip
    churn_risk: RiskRange | None = Field(
        None, description="Unknown risk (no engagement, no model yet) never matches."
    )
    days_since_purchase: DayRange | None = Field(
        None, description="From the first paid order, or (contact gift_recipient_else_payer) "
        "the first hardware meant for the person.",
    )  # fmt: skip
    days_since_activation: DayRange | None = None
    days_since_last_engagement: DayRange | None = None


class AudienceBody(BaseModel):
    """A new definition of the audience named in the path (its version is assigned)."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(
        min_length=1, max_length=4000, pattern=r"^[^\x00]*\S[^\x00]*$",
        description="Why the audience exists, in the domain's words.",
    )  # fmt: skip
    channel: Channel
    quiet_days: int = Field(
        ge=0, le=MAX_DAYS, description="Minimum days between two contacts of one person."
    )
    contact: Literal["person", "gift_recipient_else_payer"] = "person"
    filter: AudienceFilter = Field(default_factory=lambda: AudienceFilter.model_validate({}))


assert CONTACTS == ("person", "gift_recipient_else_payer")


class Suppressed(BaseModel):
    """Members not to be contacted, by reason."""

    erased: int
    no_consent: int
    quiet_period: int


class AudienceSize(BaseModel):
    """The audience's members now: contactable and suppressed."""

    members: int
    contactable: int
    suppressed: Suppressed


class Audience(BaseModel):
    """One audience: its current definition, where it came from, its size."""

    name: str
    version: int
    description: str
    channel: Channel
    quiet_days: int
    contact: Literal["person", "gift_recipient_else_payer"]
    filter: AudienceFilter
    source: Literal["file", "api"] = Field(description="The shipped file, or the API.")
    created_at: datetime = Field(description="When this version was written.")
    retired_at: datetime | None = Field(description="Set once the audience was retired.")
    size: AudienceSize


class AudienceList(BaseModel):
    """Every current (not retired) audience, by name."""

    audiences: list[Audience]


class Member(BaseModel):
    """A person in an audience."""

    person_id: str
    version: int = Field(description="The audience version the person entered under.")
    entered_at: datetime
    suppressed: Reason | None = Field(description="Why not to contact them; null: contactable.")


class MemberPage(BaseModel):
    """A page of members in person id order; ``next``: the cursor of the next page."""

    audience: str
    members: list[Member]
    next: str | None


class Exit(BaseModel):
    """A person who left the audience."""

    person_id: str
    exited_at: datetime | None


class MemberChanges(BaseModel):
    """``?updated_since=``: members that entered or changed (suppressed ones too) and people
    who left, in change order, and the cursor to ask with next (always set)."""

    audience: str
    members: list[Member]
    exited: list[Exit]
    next: str
