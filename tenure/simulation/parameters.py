"""What a simulated population looks like: every knob of the generator, with its default."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tenure.simulation.rhythm import RhythmShares


@dataclass(frozen=True, slots=True)
class PersonaShares:
    """How the people who arrive on their own split into personas (normalised on use).

    People brought in by a super user's referral come on top of these arrivals, and a gift
    brings two people: the payer (who arrives) and the recipient (who uses the device).
    """

    connected_buyer: float = 0.40
    """Buy a device, activate it within days and use it until their tenure ends."""
    one_time_buyer: float = 0.25
    """Buy a device and never use it (a few activate it late, after the 14-day window)."""
    gift_payer: float = 0.10
    """Buy a device for someone else, who activates and uses it."""
    free_user: float = 0.15
    """Use a device bound to them without paying; some later buy a subscription or service."""
    super_user: float = 0.10
    """Buy again and again, use for long, give feedback and refer new people."""

    def normalised(self) -> tuple[tuple[str, float], ...]:
        """The shares as ``(persona value, probability)`` pairs summing to 1."""
        pairs = (
            ("connected-buyer", self.connected_buyer),
            ("one-time-buyer", self.one_time_buyer),
            ("gift-payer", self.gift_payer),
            ("free-user", self.free_user),
            ("super-user", self.super_user),
        )
        if any(share < 0 for _, share in pairs):
            raise ValueError("persona shares must not be negative")
        total = sum(share for _, share in pairs)
        if total <= 0:
            raise ValueError("at least one persona share must be positive")
        return tuple((name, share / total) for name, share in pairs)


DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
"""Start of the simulated span when none is given (the CLI makes the span end at "now")."""


@dataclass(frozen=True, slots=True)
class SimulationParameters:
    """Every parameter of a simulated population; the same parameters give the same events.

    Rates are probabilities per person (or per order) unless said otherwise; delays and
    tenures are in days. The defaults describe a plausible year of a connected-device maker.
    """

    people: int = 500
    """People who arrive on their own during the span (referees and gift recipients on top)."""
    days: int = 365
    """Length of the simulated span in days."""
    start: datetime = DEFAULT_START
    """When the span starts (timezone-aware); it ends ``days`` later."""
    shares: PersonaShares = field(default_factory=PersonaShares)
    """How arrivals split into personas."""
    tenure_median_days: float = 120.0
    """Median active tenure of connected users (Weibull distribution)."""
    tenure_shape: float = 0.9
    """Weibull shape of tenure: below 1 many leave early and a few stay very long."""
    super_user_tenure_factor: float = 3.0
    """Super users' tenure is this many times longer than connected users'."""
    activation_delay_days: float = 1.5
    """Mean days from purchase to activation for buyers who activate (capped below 14)."""
    late_activation_rate: float = 0.05
    """Share of one-time buyers who activate after all, 15 to 60 days after buying."""
    uses_per_week: float = 4.0
    """Mean ``device.used`` events per active user per week (super users 1.5 times more)."""
    rhythms: RhythmShares = field(default_factory=RhythmShares)
    """How users split into engagement rhythms (daily, weekly, seasonal, fading...)."""
    offline_device_share: float = 0.15
    """Share of devices that are offline most of the time and sync in bursts."""
    offline_sync_delay_days: float = 3.0
    """Mean interval between syncs of an offline device; events wait for the next sync."""
    duplicate_rate: float = 0.02
    """Share of deliveries sent a second time (same ``id`` and ``source``): a retry."""
    refund_rate: float = 0.05
    """Share of refundable orders (one-time buyers' devices, accessories) refunded in full."""
    accessory_rate: float = 0.30
    """Share of connected users who buy an accessory while active."""
    subscription_rate: float = 0.25
    """Share of connected buyers who subscribe to a service plan while active."""
    cancellation_rate: float = 0.5
    """Share of subscribers who cancel their subscription when they stop using the device."""
    feedback_rate: float = 0.20
    """Share of users who submit feedback (super users: 90 %)."""
    repeat_purchases: float = 3.0
    """Mean further purchases of a super user during their tenure (Poisson)."""
    referral_rate: float = 1.5
    """Mean people each super user refers (Poisson); each referee buys a device."""
    free_conversion_rate: float = 0.30
    """Share of free users who later buy a subscription or service."""
    free_conversion_delay_days: float = 30.0
    """Mean days from a free user's activation to their first payment (exponential)."""
    identity_link_rate: float = 0.05
    """Share of people who link a second identifier (``identity.linked``)."""
    deactivation_rate: float = 0.30
    """Share of users who reset or return the device when they stop (others go silent)."""
    consent_change_rate: float = 0.10
    """Share of people who grant consent on a channel (``person.consent_changed``); a third
    of them withdraw it later."""
    erasure: bool = True
    """Whether one person asks to be forgotten (``person.erasure_requested``) near the end."""
    currency: str = "EUR"
    """Currency of every order."""
    seed: int = 42
    """Seed of every draw: ids, times and choices follow from it."""
    source_prefix: str = "urn:tenure:simulator"
    """CloudEvents ``source`` prefix; the persona is appended (``...:connected-buyer``)."""

    def __post_init__(self) -> None:
        if self.people < 0:
            raise ValueError("people must not be negative")
        if self.days <= 0:
            raise ValueError("days must be positive")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if self.tenure_median_days <= 0 or self.tenure_shape <= 0:
            raise ValueError("tenure median and shape must be positive")
        for name in (
            "late_activation_rate",
            "offline_device_share",
            "duplicate_rate",
            "refund_rate",
            "accessory_rate",
            "subscription_rate",
            "cancellation_rate",
            "feedback_rate",
            "free_conversion_rate",
            "identity_link_rate",
            "deactivation_rate",
            "consent_change_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        self.shares.normalised()
        self.rhythms.normalised()

    @property
    def end(self) -> datetime:
        """When the simulated span ends."""
        return self.start + timedelta(days=self.days)
