"""Member tier by value contribution: net spend plus engagement, as one score.

``score = sum over currencies of net_minor / 100 * weight(currency)
          + active_days * points_per_active_day
          + referrals * points_per_referral
          + feedback * points_per_feedback``

rounded to 2 decimals. Currencies are not converted: each currency's weight (default 1
point per major unit, i.e. per 100 minor units) is configured. The tier is the highest
configured threshold the score reaches (bronze 1, silver 100, gold 500, platinum 2000 by
default), or ``none`` below the first.
"""

from __future__ import annotations

from collections.abc import Mapping

from tenure.domain.config import LifecycleConfig

NO_TIER = "none"
"""The tier of a person whose score is below every threshold."""


def value_score(
    net_spend: Mapping[str, int],
    active_days: int,
    referrals: int,
    feedback: int,
    config: LifecycleConfig,
) -> float:
    """The value contribution score (see module docstring)."""
    spend = sum(
        amount / 100.0 * config.currency_weight(currency)
        for currency, amount in sorted(net_spend.items())
    )
    engagement = (
        active_days * config.points_per_active_day
        + referrals * config.points_per_referral
        + feedback * config.points_per_feedback
    )
    return round(spend + engagement, 2)


def member_tier(score: float, config: LifecycleConfig) -> str:
    """The highest tier whose threshold ``score`` reaches."""
    tier = NO_TIER
    for name, threshold in config.tier_thresholds:
        if score >= threshold:
            tier = name
    return tier
