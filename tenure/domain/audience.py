"""Audiences: named, versioned definitions of who to reach, on which channel, how rarely.

An audience is a small declarative filter over the person view (:class:`AudienceFilter`,
every term ANDed, each a set of allowed values or a range), plus the channel it reaches
people on, a quiet period (the minimum number of days between two contacts of one person
for this audience) and who is contacted (:data:`CONTACTS`). Everything here is pure: the
same definition and view give the same answer, whenever and wherever it is asked.

Time terms (``days_since_*``) count whole days elapsed since their instant, to the
instant: ``floor((as_of - at) / 1 day)``. A range ``{min, max}`` is inclusive; either end
may be left out. A term on a missing instant (never purchased, never activated) is false.

The document form (what the shipped file and ``PUT /v1/audiences/{name}`` carry) is
described in ``docs/audiences.md``; :func:`parse_audience` validates it and names the
field at fault, :meth:`AudienceDefinition.to_document` writes it back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final, TypeVar

from tenure.domain.events import CONSENT_CHANNELS
from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.domain.tags import TAG_NAMES
from tenure.domain.tier import NO_TIER
from tenure.domain.view import DEFAULT_CONFIG, ENTRY_PATHS, PersonView
from tenure.errors import TenureError

__all__ = [
    "CONTACTS",
    "FILTER_TERMS",
    "MAX_DAYS",
    "ROLES",
    "SUPPRESSION_REASONS",
    "AudienceDefinition",
    "AudienceError",
    "AudienceFilter",
    "Channel",
    "DayRange",
    "RiskRange",
    "is_member",
    "next_membership_change",
    "parse_audience",
    "quiet_until",
    "suppression_of",
]

DAY: Final = timedelta(days=1)
MAX_DAYS: Final = 36_500
"""The longest day range bound and quiet period (a century): instants stay representable."""
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9-]{0,62}")
"""Audience names (the whole name matches): lower-case letters, digits and hyphens, starting
with a letter (they appear in URLs, file names and event types)."""


class AudienceError(TenureError, ValueError):
    """An audience document that is not a valid definition (the message names the field)."""


class Channel(StrEnum):
    """How an audience reaches people: the channels consent is given for
    (``person.consent_changed``'s ``channel``, :data:`~tenure.domain.events.CONSENT_CHANNELS`)."""

    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    IN_APP = "in_app"


PERSON: Final = "person"
GIFT_RECIPIENT_ELSE_PAYER: Final = "gift_recipient_else_payer"
CONTACTS: Final[tuple[str, ...]] = (PERSON, GIFT_RECIPIENT_ELSE_PAYER)
"""Who an audience reaches for a purchase:

* ``person``: the member themself; ``days_since_purchase`` counts from their own first paid
  order (whatever it bought, for whomever);
* ``gift_recipient_else_payer``: the device's intended user: ``days_since_purchase``
  counts from the first hardware meant for the person
  (:attr:`~tenure.domain.view.PersonView.intended_hardware_at`: bought for themself, or a
  gift naming them). The beneficiary of a gift is a member for it, its payer is not; a
  payer who named nobody is a member for their own purchase."""

SPONSOR: Final = "sponsor"
GIFT_PAYER: Final = "gift_payer"
GIFT_RECIPIENT: Final = "gift_recipient"
ROLES: Final[tuple[str, ...]] = (SPONSOR, GIFT_PAYER, GIFT_RECIPIENT)
"""The paying-for-others roles a ``roles`` term may name (any of them matches)."""

NO_CONSENT: Final = "no_consent"
QUIET_PERIOD: Final = "quiet_period"
ERASED: Final = "erased"
SUPPRESSION_REASONS: Final[tuple[str, ...]] = (ERASED, NO_CONSENT, QUIET_PERIOD)
"""Why a member is not to be contacted, first applicable wins:

* ``erased``: the person asked to be forgotten;
* ``no_consent``: consent for the audience's channel is not granted (withdrawn, or never
  given: a channel nobody spoke of counts as not granted);
* ``quiet_period``: the person was contacted for this audience less than ``quiet_days``
  days ago."""

N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class DayRange:
    """Whole days elapsed since an instant, inclusive at both ends (``None``: open)."""

    min: int | None = None
    max: int | None = None

    def holds(self, days: int) -> bool:
        """Whether ``days`` lies in the range."""
        return (self.min is None or days >= self.min) and (self.max is None or days <= self.max)

    def edges(self, since: datetime) -> tuple[datetime, ...]:
        """The instants at which the term on an instant ``since`` turns true or false."""
        found = [] if self.min is None else [since + self.min * DAY]
        if self.max is not None:
            found.append(since + (self.max + 1) * DAY)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class RiskRange:
    """A churn-risk probability range, inclusive at both ends (``None``: open)."""

    min: float | None = None
    max: float | None = None

    def holds(self, risk: float) -> bool:
        """Whether ``risk`` lies in the range."""
        return (self.min is None or risk >= self.min) and (self.max is None or risk <= self.max)


@dataclass(frozen=True, slots=True)
class AudienceFilter:
    """Who is in an audience: every term set must hold (``None``/empty: no constraint).

    Set terms allow any of their values; ``tags`` requires all of its tags and
    ``without_tags`` none of its; ``products`` matches a person with any of the products;
    ``roles`` any of :data:`ROLES`; ``activated`` whether a device the person uses was
    activated (or used), or a device they paid for was used
    (``view.device_activation_at`` or ``view.first_use_at`` set).
    """

    segment: frozenset[Segment] | None = None
    entry_path: frozenset[str] | None = None
    stage: frozenset[Stage] | None = None
    level: frozenset[Level] | None = None
    tier: frozenset[str] | None = None
    tags: frozenset[str] = frozenset()
    without_tags: frozenset[str] = frozenset()
    products: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    activated: bool | None = None
    churn_risk: RiskRange | None = None
    days_since_purchase: DayRange | None = None
    days_since_activation: DayRange | None = None
    days_since_last_engagement: DayRange | None = None


@dataclass(frozen=True, slots=True)
class AudienceDefinition:
    """One version of a named audience."""

    name: str
    version: int
    description: str
    """Why the audience exists, in the domain's words."""
    channel: Channel
    quiet_days: int
    """Minimum days between two contacts of one person for this audience."""
    contact: str
    """Who is reached (:data:`CONTACTS`)."""
    filter: AudienceFilter

    def to_document(self) -> dict[str, Any]:
        """The definition as a JSON-ready document :func:`parse_audience` reads back."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "channel": str(self.channel),
            "quiet_days": self.quiet_days,
            "contact": self.contact,
            "filter": _filter_document(self.filter),
        }


# ---- parsing -----------------------------------------------------------------------------

_DEFINITION_KEYS: Final = frozenset(
    {"name", "version", "description", "channel", "quiet_days", "contact", "filter"}
)
FILTER_TERMS: Final = tuple(f.name for f in fields(AudienceFilter))
"""The names of the filter terms, as a document writes them."""
_TIERS: Final = (NO_TIER, *(name for name, _ in DEFAULT_CONFIG.tier_thresholds))
_PRODUCT: Final = re.compile(r"\S{1,200}")


def _fail(field: str, expected: str, got: object) -> AudienceError:
    return AudienceError(f"audience {field}: expected {expected}, got {got!r}")


def _text(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "a non-empty string", value)
    return value


def _count(value: Any, where: str, *, least: int, most: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise _fail(where, f"an integer from {least} to {most}", value)
    return value


E = TypeVar("E")


def _choices(value: Any, where: str, parse: Callable[[str], E], allowed: Iterable[str]) -> Any:
    names = tuple(allowed)
    if not isinstance(value, list | tuple) or not value:
        raise _fail(where, f"a non-empty list of {', '.join(names)}", value)
    chosen = set()
    for item in value:
        if not isinstance(item, str) or item not in names:
            raise _fail(f"{where}[]", f"one of {', '.join(names)}", item)
        chosen.add(parse(item))
    return frozenset(chosen)


def _range_bounds(
    value: Any, where: str, number: Callable[[Any, str], N]
) -> tuple[N | None, N | None]:
    if not isinstance(value, Mapping) or not value or set(value) - {"min", "max"}:
        raise _fail(where, "an object with min and/or max", value)
    low = None if value.get("min") is None else number(value["min"], f"{where}.min")
    high = None if value.get("max") is None else number(value["max"], f"{where}.max")
    if low is not None and high is not None and low > high:
        raise _fail(where, "min <= max", value)
    return low, high


def _days(value: Any, where: str) -> int:
    return _count(value, where, least=0, most=MAX_DAYS)


def _probability(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, "a number in [0, 1]", value)
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise _fail(where, "a number in [0, 1]", value)
    return number


def _parse_filter(raw: Any) -> AudienceFilter:
    if not isinstance(raw, Mapping):
        raise _fail("filter", "an object of filter terms", raw)
    unknown = sorted(set(raw) - set(FILTER_TERMS))
    if unknown:
        raise _fail(
            f"filter.{unknown[0]}", f"one of the terms {', '.join(FILTER_TERMS)}", unknown[0]
        )
    terms: dict[str, Any] = {}
    for key, parse, allowed in (
        ("segment", Segment, [s.value for s in Segment]),
        ("entry_path", str, ENTRY_PATHS),
        ("stage", Stage, [s.value for s in Stage]),
        ("level", Level, [lv.value for lv in Level]),
        ("tier", str, _TIERS),
        ("tags", str, TAG_NAMES),
        ("without_tags", str, TAG_NAMES),
        ("roles", str, ROLES),
    ):
        if raw.get(key) is not None:
            terms[key] = _choices(raw[key], f"filter.{key}", parse, allowed)
    if raw.get("products") is not None:
        products = raw["products"]
        if not isinstance(products, list | tuple) or not products:
            raise _fail("filter.products", "a non-empty list of product names", products)
        for product in products:
            if not isinstance(product, str) or not _PRODUCT.fullmatch(product):
                raise _fail("filter.products[]", "a product name", product)
        terms["products"] = frozenset(products)
    if raw.get("activated") is not None:
        if not isinstance(raw["activated"], bool):
            raise _fail("filter.activated", "true or false", raw["activated"])
        terms["activated"] = raw["activated"]
    if raw.get("churn_risk") is not None:
        terms["churn_risk"] = RiskRange(
            *_range_bounds(raw["churn_risk"], "filter.churn_risk", _probability)
        )
    for key in ("days_since_purchase", "days_since_activation", "days_since_last_engagement"):
        if raw.get(key) is not None:
            terms[key] = DayRange(*_range_bounds(raw[key], f"filter.{key}", _days))
    both = terms.get("tags", frozenset()) & terms.get("without_tags", frozenset())
    if both:
        raise _fail("filter.without_tags", "no tag also required by filter.tags", sorted(both))
    return AudienceFilter(**terms)


def parse_audience(doc: Mapping[str, Any]) -> AudienceDefinition:
    """Read and validate an audience document (``version`` defaults to 1).

    Raises :class:`AudienceError` naming the first field at fault.
    """
    if not isinstance(doc, Mapping):
        raise _fail("document", "an object", doc)
    unknown = sorted(set(doc) - _DEFINITION_KEYS)
    if unknown:
        raise _fail(
            unknown[0], f"one of the fields {', '.join(sorted(_DEFINITION_KEYS))}", unknown[0]
        )
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise _fail("name", "lower-case letters, digits and '-', starting with a letter", name)
    channel = doc.get("channel")
    if channel not in CONSENT_CHANNELS:
        raise _fail("channel", f"one of {', '.join(CONSENT_CHANNELS)}", channel)
    contact = doc.get("contact", PERSON)
    if contact not in CONTACTS:
        raise _fail("contact", f"one of {', '.join(CONTACTS)}", contact)
    return AudienceDefinition(
        name=name,
        version=_count(doc.get("version", 1), "version", least=1),
        description=_text(doc, "description", "description"),
        channel=Channel(channel),
        quiet_days=_count(doc.get("quiet_days"), "quiet_days", least=0, most=MAX_DAYS),
        contact=contact,
        filter=_parse_filter(doc.get("filter", {})),
    )


def _filter_document(terms: AudienceFilter) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for f in fields(AudienceFilter):
        value = getattr(terms, f.name)
        if value is None or value == frozenset():
            continue
        if isinstance(value, frozenset):
            document[f.name] = sorted(str(v) for v in value)
        elif isinstance(value, DayRange | RiskRange):
            document[f.name] = {
                k: v for k, v in (("min", value.min), ("max", value.max)) if v is not None
            }
        else:
            document[f.name] = value
    return document


# ---- membership --------------------------------------------------------------------------


def _purchase_at(definition: AudienceDefinition, view: PersonView) -> datetime | None:
    if definition.contact == GIFT_RECIPIENT_ELSE_PAYER:
        return view.intended_hardware_at
    return view.first_paid_order_at


def _activated(view: PersonView) -> bool:
    return view.device_activation_at is not None or view.first_use_at is not None


def _timed_terms(
    definition: AudienceDefinition, view: PersonView
) -> list[tuple[DayRange, datetime | None]]:
    terms = definition.filter
    pairs = (
        (terms.days_since_purchase, _purchase_at(definition, view)),
        (terms.days_since_activation, view.device_activation_at),
        (terms.days_since_last_engagement, view.last_engagement_at),
    )
    return [(term, since) for term, since in pairs if term is not None]


def _timed_hold(definition: AudienceDefinition, view: PersonView, at: datetime) -> bool:
    for term, since in _timed_terms(definition, view):
        if since is None or since > at or not term.holds((at - since) // DAY):
            return False
    return True


def _roles(view: PersonView) -> set[str]:
    found: set[str] = {tag for tag in (GIFT_PAYER, GIFT_RECIPIENT) if tag in view.tags}
    if view.is_sponsor:
        found.add(SPONSOR)
    return found


def _static_hold(definition: AudienceDefinition, view: PersonView) -> bool:
    """The terms that only facts (and the separately scheduled stage) change."""
    t = definition.filter
    tags = set(view.tags)
    return not (
        view.erased
        or (t.segment is not None and view.segment not in t.segment)
        or (t.entry_path is not None and view.entry_path not in t.entry_path)
        or (t.stage is not None and view.stage not in t.stage)
        or (t.level is not None and view.level not in t.level)
        or (t.tier is not None and view.tier not in t.tier)
        or not t.tags <= tags
        or t.without_tags & tags
        or (t.products is not None and not t.products & set(view.products))
        or (t.roles is not None and not t.roles & _roles(view))
        or (t.activated is not None and _activated(view) is not t.activated)
    )


def is_member(definition: AudienceDefinition, view: PersonView, churn_risk: float | None) -> bool:
    """Whether the person of ``view`` is in the audience at ``view.as_of``.

    ``churn_risk`` is the person's churn probability at ``view.as_of`` (computed at read
    time from the live model); ``None`` (unknown) makes a ``churn_risk`` term false. An
    erased person is in no audience.
    """
    if not _static_hold(definition, view):
        return False
    risk = definition.filter.churn_risk
    if risk is not None and (churn_risk is None or not risk.holds(churn_risk)):
        return False
    return _timed_hold(definition, view, view.as_of)


def _next_midnight(at: datetime) -> datetime:
    return datetime.combine(at.astimezone(UTC).date() + DAY, time(), UTC)


def next_membership_change(definition: AudienceDefinition, view: PersonView) -> datetime | None:
    """The earliest instant after ``view.as_of`` at which membership can change by time
    alone, no new facts (``None``: not by this filter's own time terms).

    Covers the filter's ``days_since_*`` terms (an edge where they turn true or false),
    and, for a filter with a ``churn_risk`` term, the next UTC midnight while the person is
    silent (the risk is a function of the silence days, which grow at midnight). Changes of
    the stage by time are scheduled by :func:`tenure.domain.schedule.next_change_at` on the
    person: take the earlier of both. Only edges where the static terms hold count: while
    one fails, time alone cannot make the person a member.
    """
    as_of = view.as_of
    if not _static_hold(definition, view):
        return None
    now = _timed_hold(definition, view, as_of)
    edges = sorted(
        {
            edge
            for term, since in _timed_terms(definition, view)
            if since is not None
            for edge in term.edges(since)
            if edge > as_of
        }
    )
    found = next((e for e in edges if _timed_hold(definition, view, e) is not now), None)
    if definition.filter.churn_risk is not None and view.churn.silence_days is not None:
        midnight = _next_midnight(as_of)
        if found is None or midnight < found:
            found = midnight
    return found


# ---- suppression -------------------------------------------------------------------------


def quiet_until(
    definition: AudienceDefinition, last_contacted_at: datetime | None
) -> datetime | None:
    """When the quiet period after the last contact for this audience ends (``None``: no
    contact yet, nothing to wait for)."""
    if last_contacted_at is None:
        return None
    return last_contacted_at + definition.quiet_days * DAY


def suppression_of(
    definition: AudienceDefinition, view: PersonView, last_contacted_at: datetime | None
) -> str | None:
    """``None`` if the person may be contacted for this audience at ``view.as_of``, else the
    first applicable reason of :data:`SUPPRESSION_REASONS`.

    ``last_contacted_at`` is when the person was last contacted for this audience (its
    quiet period runs ``quiet_days`` from then).
    """
    if view.erased:
        return ERASED
    if dict(view.consent).get(str(definition.channel)) is not True:
        return NO_CONSENT
    until = quiet_until(definition, last_contacted_at)
    if until is not None and view.as_of < until:
        return QUIET_PERIOD
    return None
