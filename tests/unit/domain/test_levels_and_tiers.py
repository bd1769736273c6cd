"""Relationship levels, super users, member tiers and tags."""

from __future__ import annotations

import pytest

from tenure.domain import Level, LifecycleConfig

from .scenario import activated, feedback, item, paid, referred, used
from .views import view_of

LONG_USE = [
    paid("o1", "fan", 0, item(30_000, device="d1")),
    activated("d1", "fan", 0),
    *(used("d1", n) for n in range(7, 121, 7)),
]
SUPER = [*LONG_USE, paid("o2", "fan", 30, item(5_000, "accessory")), referred("fan", "friend", 60)]


def test_nothing_known_is_level_none() -> None:
    assert view_of([referred("a", "b", 0)], "b", 1).level is Level.NONE


def test_a_single_purchase_is_micro() -> None:
    assert view_of([paid("o1", "p", 0)], "p", 1).level is Level.MICRO


def test_regular_use_is_weak() -> None:
    events = [activated("d1", "p", 0), *(used("d1", n) for n in (1, 2, 3))]
    assert view_of(events, "p", 4).level is Level.WEAK
    assert view_of(events[:3], "p", 4).level is Level.MICRO


def test_repeat_purchase_is_weak() -> None:
    assert view_of([paid("o1", "p", 0), paid("o2", "p", 9)], "p", 10).level is Level.WEAK


def test_long_use_with_feedback_is_strong() -> None:
    view = view_of([*LONG_USE, feedback("fan", 50)], "fan", 121)
    assert view.level is Level.STRONG
    assert view.tenure_days >= 90
    assert not view.is_super_user


def test_long_use_alone_is_weak() -> None:
    assert view_of(LONG_USE, "fan", 121).level is Level.WEAK


def test_super_user_rebuys_uses_long_and_refers() -> None:
    view = view_of(SUPER, "fan", 121)
    assert view.level is Level.SUPER
    assert view.is_super_user
    assert {"referrer", "repeat_buyer", "super_user", "hardware_owner"} <= set(view.tags)
    assert view.referral_count == 1
    assert view_of(SUPER, "friend", 121).level is Level.NONE


def test_referral_without_repeat_purchase_is_strong_unless_configured() -> None:
    events = [*LONG_USE, referred("fan", "friend", 60)]
    assert view_of(events, "fan", 121).level is Level.STRONG
    relaxed = LifecycleConfig(super_requires_repeat_purchase=False)
    assert view_of(events, "fan", 121, relaxed).level is Level.SUPER


def test_tier_from_net_spend_and_engagement() -> None:
    view = view_of(SUPER, "fan", 121)
    # 350 EUR + 20 active days (day 0, 17 weekly uses, order day 30, referral day 60)
    # + 1 referral * 25
    assert view.active_days == 20
    assert view.value_score == pytest.approx(350 + 20 + 25)
    assert view.tier == "silver"
    assert view.net_spend == (("EUR", 35_000),)
    assert view_of(SUPER, "fan", 121, LifecycleConfig(currency_weights=(("EUR", 2.0),))).tier == (
        "gold"
    )
    assert view_of([referred("a", "b", 0)], "b", 1).tier == "none"


def test_multiple_currencies_use_their_weights() -> None:
    events = [paid("o1", "p", 0, item(10_000, currency="EUR"), item(500_000, currency="JPY"))]
    config = LifecycleConfig(currency_weights=(("JPY", 0.01),))
    view = view_of(events, "p", 1, config)
    assert view.value_score == pytest.approx(100 + 50 + 1)
    assert view.net_spend == (("EUR", 10_000), ("JPY", 500_000))


def test_config_validates_thresholds() -> None:
    with pytest.raises(ValueError):
        LifecycleConfig(tier_thresholds=(("gold", 10.0), ("silver", 5.0)))
    with pytest.raises(ValueError):
        LifecycleConfig(at_risk_fraction=1.5)
    assert LifecycleConfig().at_risk_days == 15
