"""Relationship level (none, micro, weak, strong, super), defined from data.

With P paid orders, A active days, T tenure days (last minus first engagement day),
F feedback events and R referrals, all as of the instant and with configurable
thresholds (defaults in brackets), the highest matching level wins:

- ``super``: strong, R >= super_min_referrals [1] and, if super_requires_repeat_purchase
  [true], P >= repeat_purchase_min_orders [2];
- ``strong``: weak, T >= strong_min_tenure_days [90], A >= strong_min_active_days [12] and
  (P >= repeat_purchase_min_orders or F >= 1 or R >= 1);
- ``weak``: P >= repeat_purchase_min_orders [2] or A >= weak_min_active_days [4];
- ``micro``: any engagement or paid order;
- ``none``: nothing yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tenure.domain.config import LifecycleConfig


class Level(StrEnum):
    """Depth of the relationship with a person."""

    NONE = "none"
    MICRO = "micro"
    WEAK = "weak"
    STRONG = "strong"
    SUPER = "super"

    @property
    def rank(self) -> int:
        """0 for none up to 4 for super (to tell deepening from weakening)."""
        return list(Level).index(self)


@dataclass(frozen=True, slots=True)
class LevelInputs:
    """The numbers the relationship level is computed from."""

    paid_orders: int
    active_days: int
    tenure_days: int
    feedback: int
    referrals: int


def relationship_level(facts: LevelInputs, config: LifecycleConfig) -> Level:
    """The relationship level for the given numbers."""
    repeat = facts.paid_orders >= config.repeat_purchase_min_orders
    if not (facts.paid_orders or facts.active_days):
        return Level.NONE
    if not (repeat or facts.active_days >= config.weak_min_active_days):
        return Level.MICRO
    strong = (
        facts.tenure_days >= config.strong_min_tenure_days
        and facts.active_days >= config.strong_min_active_days
        and (repeat or facts.feedback >= 1 or facts.referrals >= 1)
    )
    if not strong:
        return Level.WEAK
    brings_people = facts.referrals >= config.super_min_referrals
    if brings_people and (repeat or not config.super_requires_repeat_purchase):
        return Level.SUPER
    return Level.STRONG
