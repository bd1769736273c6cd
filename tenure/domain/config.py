"""Configuration of the derived lifecycle view: windows, thresholds and weights.

Every default is documented in ``docs/lifecycle.md``; change them only with the business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """Thresholds the derived view uses. All durations are whole UTC days."""

    inactivity_window_days: int = 30
    """W: silent for W days = churned; first (return) engagement within W = new (resurrected)."""
    at_risk_fraction: float = 0.5
    """Silent for at least ceil(W * fraction) days (and less than W) = at risk."""
    activation_window_days: int = 14
    """A: a hardware buyer is expected to activate within A days of the first purchase."""

    weak_min_active_days: int = 4
    """Regular use: at least this many active days makes a relationship weak."""
    repeat_purchase_min_orders: int = 2
    """Repeat purchase: at least this many paid orders."""
    strong_min_tenure_days: int = 90
    """Strong needs at least this many days between first and last engagement ..."""
    strong_min_active_days: int = 12
    """... and at least this many active days, plus repeat purchase, feedback or referral."""
    super_min_referrals: int = 1
    """Super (super user): strong plus at least this many people referred ..."""
    super_requires_repeat_purchase: bool = True
    """... and, when true, repeat purchases (super users keep re-buying)."""

    tier_thresholds: tuple[tuple[str, float], ...] = (
        ("bronze", 1.0),
        ("silver", 100.0),
        ("gold", 500.0),
        ("platinum", 2000.0),
    )
    """Member tiers by value score, ascending; below the first threshold the tier is none."""
    currency_weights: tuple[tuple[str, float], ...] = ()
    """Value points per major unit (100 minor units) of a currency; unlisted currencies: 1."""
    points_per_active_day: float = 1.0
    points_per_referral: float = 25.0
    points_per_feedback: float = 2.0

    def __post_init__(self) -> None:
        if self.inactivity_window_days < 2:
            raise ValueError("inactivity_window_days must be at least 2")
        if not 0.0 < self.at_risk_fraction < 1.0:
            raise ValueError("at_risk_fraction must be in (0, 1)")
        thresholds = [value for _, value in self.tier_thresholds]
        if thresholds != sorted(thresholds) or any(value <= 0 for value in thresholds):
            raise ValueError("tier_thresholds must be positive and ascending")

    @property
    def at_risk_days(self) -> int:
        """Days of silence after which a person is at risk (ceil(W * at_risk_fraction))."""
        days = math.ceil(self.inactivity_window_days * self.at_risk_fraction)
        return max(1, min(days, self.inactivity_window_days - 1))

    def currency_weight(self, currency: str) -> float:
        """Value points per major unit of ``currency`` (default 1)."""
        return dict(self.currency_weights).get(currency, 1.0)
