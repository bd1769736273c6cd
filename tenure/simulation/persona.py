"""The kinds of people in a simulated population, and the life each kind lives.

Every person gets two seeded generators of their own (one for their choices, one for their
usage times), so a person's life does not depend on who else is simulated, and cutting it
at a horizon only drops its latest usage events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tenure.domain.events import CONSENT_CHANNELS
from tenure.simulation.catalogue import (
    ACCESSORIES,
    DEACTIVATION_REASONS,
    DEVICES,
    FEATURES,
    FEEDBACK_CHANNELS,
    FREE_DEVICE,
    SERVICES,
    SUBSCRIPTIONS,
)
from tenure.simulation.identifiers import Identifiers
from tenure.simulation.life import DeviceSync, Happening, Life
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.rhythm import Rhythm, draw_rhythm, use_times
from tenure.simulation.schedule import (
    after,
    count,
    delay_days,
    tenure_days,
)

ACTIVATION_WINDOW_DAYS = 14
"""Buyers who activate within this many days of paying count as activated."""


class Persona(StrEnum):
    """What kind of person someone is; the value ends their events' ``source``."""

    CONNECTED_BUYER = "connected-buyer"
    ONE_TIME_BUYER = "one-time-buyer"
    GIFT_PAYER = "gift-payer"
    GIFT_RECIPIENT = "gift-recipient"
    FREE_USER = "free-user"
    SUPER_USER = "super-user"
    REFERRED = "referred"


CONNECTED_USERS = frozenset({Persona.CONNECTED_BUYER, Persona.GIFT_RECIPIENT, Persona.REFERRED})
"""Users whose tenure is drawn from the connected-user distribution (super users: longer)."""

DEVICE_BUYERS = frozenset(
    {
        Persona.CONNECTED_BUYER,
        Persona.ONE_TIME_BUYER,
        Persona.GIFT_PAYER,
        Persona.SUPER_USER,
        Persona.REFERRED,
    }
)
"""People who pay for a device."""


@dataclass(frozen=True, slots=True)
class Setting:
    """What every life is written against: the parameters, the ids and the horizon.

    Usage events are written into lives up to ``usage_until``; with ``None`` none are
    written and :func:`usage` streams them (following the population into the future).
    """

    parameters: SimulationParameters
    ids: Identifiers
    usage_until: datetime | None

    def generator(self, key: str) -> random.Random:
        """The generator of the person ``key``'s choices (usage times have their own)."""
        return random.Random(f"{self.parameters.seed}:{key}")


def live(key: str, persona: Persona, arrival: datetime, setting: Setting) -> list[Life]:
    """Write the life of the person ``key`` of ``persona``, arriving at ``arrival``.

    Returns that life first, then the lives it brings along: a gift's recipient, a super
    user's referees (and their own, if any).
    """
    lives = _lives(key, persona, arrival, setting)
    for life in lives:
        _consent_changes(life, setting.parameters)
    return lives


def _lives(key: str, persona: Persona, arrival: datetime, setting: Setting) -> list[Life]:
    if persona in (Persona.CONNECTED_BUYER, Persona.REFERRED):
        return [_connected_buyer(key, persona, arrival, setting)]
    if persona is Persona.ONE_TIME_BUYER:
        return [_one_time_buyer(key, arrival, setting)]
    if persona is Persona.GIFT_PAYER:
        return _gift(key, arrival, setting)
    if persona is Persona.FREE_USER:
        return [_free_user(key, arrival, setting)]
    if persona is Persona.SUPER_USER:
        return _super_user(key, arrival, setting)
    raise ValueError(f"{persona} does not arrive on its own")


def _consent_changes(life: Life, params: SimulationParameters) -> None:
    """A share of people (``consent_change_rate``) grant consent on a channel within a month
    of their first event, and a third of them withdraw it one to four months later. Drawn
    from the life's own random stream, and from events other than uses (written into the
    life or streamed later), so every other draw and the continuation are as before."""
    known = [h.time for h in life.happenings if h.type != "device.used"]
    if not known:
        return
    rng = random.Random(f"{params.seed}:{life.key}:consent")
    if rng.random() >= params.consent_change_rate:
        return
    channel = rng.choice(CONSENT_CHANNELS)
    granted_at = after(min(known), rng.uniform(0, 30))
    life.add("consent", "person.consent_changed", granted_at, _consent(life, channel, True))
    if rng.random() < 1 / 3:
        withdrawn_at = after(granted_at, rng.uniform(30, 120))
        life.add(
            "consent-withdrawn",
            "person.consent_changed",
            withdrawn_at,
            _consent(life, channel, False),
        )


def _consent(life: Life, channel: str, granted: bool) -> dict[str, Any]:
    return {"person_id": life.person_id, "channel": channel, "granted": granted}


def _new_life(key: str, persona: Persona, arrival: datetime, setting: Setting) -> Life:
    return Life(key, setting.ids.person(key), persona.value, arrival)


def _device_sync(rng: random.Random, params: SimulationParameters) -> DeviceSync:
    if rng.random() < params.offline_device_share:
        interval = params.offline_sync_delay_days * rng.uniform(0.5, 1.5)
        return DeviceSync(interval, rng.uniform(0, interval))
    return DeviceSync()


def _buy_device(life: Life, rng: random.Random, setting: Setting, for_key: str) -> int:
    """Pay for a device used by the person ``for_key``; returns its price."""
    product = rng.choice(DEVICES)
    device_id = setting.ids.device(for_key)
    beneficiary = None if for_key == life.key else setting.ids.person(for_key)
    life.pay(
        "buy-device",
        life.arrival,
        setting.ids.order(f"{life.key}/device"),
        [(product, device_id)],
        setting.parameters.currency,
        beneficiary_id=beneficiary,
    )
    life.device_id = device_id
    life.bought_device_at = life.arrival
    return product.amount_minor


def _activate(
    life: Life,
    rng: random.Random,
    setting: Setting,
    product: str,
    activated: datetime,
    tenure: float,
) -> None:
    """Bind the life's device to the person at ``activated``; stop use ``tenure`` days on."""
    assert life.device_id is not None
    life.activated_at = activated
    life.tenure_days = tenure
    life.stopped_at = after(activated, tenure)
    life.add(
        "activate",
        "device.activated",
        activated,
        {"device_id": life.device_id, "person_id": life.person_id, "product": product},
    )
    if rng.random() < setting.parameters.deactivation_rate:
        life.add(
            "deactivate",
            "device.deactivated",
            life.stopped_at,
            {"device_id": life.device_id, "reason": rng.choice(DEACTIVATION_REASONS)},
        )


def _use(life: Life, setting: Setting, per_week: float) -> None:
    """Plan ``device.used`` events from activation until use stops.

    They are written into the life up to ``setting.usage_until``; with ``None`` they are
    left to :func:`usage`, which streams them.
    """
    life.uses_per_week = per_week
    rhythm_rng = random.Random(f"{setting.parameters.seed}:{life.key}:rhythm")
    life.rhythm = draw_rhythm(rhythm_rng, setting.parameters.rhythms).value
    if setting.usage_until is not None:
        life.happenings.extend(usage(life, setting.parameters.seed, setting.usage_until))


def usage(life: Life, seed: int, until: datetime | None = None) -> Iterator[Happening]:
    """The ``device.used`` events of ``life`` in event-time order, up to ``until``.

    They come from the person's own usage generators (one for the moments, following the
    person's :class:`Rhythm`, one for what each use was), so the same person always uses
    their device at the same moments, however far the events are taken.
    """
    if not life.uses_per_week or life.activated_at is None or life.stopped_at is None:
        return
    assert life.device_id is not None and life.rhythm is not None
    use_rng = random.Random(f"{seed}:{life.key}:use")
    time_rng = random.Random(f"{seed}:{life.key}:use-times")
    stop = life.stopped_at if until is None else min(life.stopped_at, until)
    times = use_times(time_rng, Rhythm(life.rhythm), life.activated_at, stop, life.uses_per_week)
    for n, moment in enumerate(times):
        yield Happening(
            f"use-{n}",
            "device.used",
            moment,
            {
                "device_id": life.device_id,
                "person_id": life.person_id,
                "duration_s": round(use_rng.uniform(20, 3600)),
                "feature": use_rng.choice(FEATURES),
            },
        )


def _while_active(rng: random.Random, life: Life) -> datetime:
    """A moment drawn uniformly in the life's active period."""
    assert life.activated_at is not None and life.tenure_days is not None
    return after(life.activated_at, rng.uniform(0, life.tenure_days))


def _feedback(life: Life, rng: random.Random, label: str, at: datetime, rating: int) -> None:
    life.add(
        label,
        "feedback.submitted",
        at,
        {"person_id": life.person_id, "channel": rng.choice(FEEDBACK_CHANNELS), "rating": rating},
    )


def _identity_link(life: Life, rng: random.Random, setting: Setting) -> None:
    if rng.random() < setting.parameters.identity_link_rate:
        life.add(
            "link",
            "identity.linked",
            after(life.arrival, rng.uniform(0.5, 60)),
            {"person_id": life.person_id, "alias_id": setting.ids.alias(life.key)},
        )


def _connected_extras(life: Life, rng: random.Random, setting: Setting) -> None:
    """Accessories, a plan (maybe cancelled), feedback and an identity link of a user."""
    params = setting.parameters
    assert life.activated_at is not None and life.tenure_days is not None
    assert life.stopped_at is not None
    if rng.random() < params.accessory_rate:
        accessory = rng.choice(ACCESSORIES)
        at = _while_active(rng, life)
        order = setting.ids.order(f"{life.key}/accessory")
        life.pay("buy-accessory", at, order, [(accessory, None)], params.currency)
        if rng.random() < params.refund_rate:
            refunded = after(at, rng.uniform(1, 20))
            life.refund(
                "refund-accessory", refunded, order, accessory.amount_minor, params.currency
            )
    if rng.random() < params.subscription_rate:
        plan = rng.choice(SUBSCRIPTIONS)
        at = after(life.activated_at, rng.uniform(0, min(30.0, life.tenure_days)))
        order = setting.ids.order(f"{life.key}/plan")
        life.pay("subscribe", at, order, [(plan, None)], params.currency)
        if rng.random() < params.cancellation_rate:
            life.add(
                "cancel",
                "subscription.cancelled",
                after(life.stopped_at, rng.uniform(0, 3)),
                {"person_id": life.person_id, "sku": plan.sku},
            )
    if rng.random() < params.feedback_rate:
        _feedback(life, rng, "feedback", _while_active(rng, life), rng.choice((2, 3, 4, 4, 5)))
    _identity_link(life, rng, setting)


def _connected_buyer(key: str, persona: Persona, arrival: datetime, setting: Setting) -> Life:
    """Buys a device, activates it within days and uses it until their tenure ends."""
    params = setting.parameters
    rng = setting.generator(key)
    life = _new_life(key, persona, arrival, setting)
    life.sync = _device_sync(rng, params)
    _buy_device(life, rng, setting, key)
    assert life.device_id is not None
    product = life.happenings[-1].data["items"][0]["sku"]
    activated = after(arrival, delay_days(rng, params.activation_delay_days, cap=13.5))
    tenure = tenure_days(rng, params.tenure_median_days, params.tenure_shape)
    _activate(life, rng, setting, product, activated, tenure)
    _connected_extras(life, rng, setting)
    _use(life, setting, params.uses_per_week)
    return life


def _one_time_buyer(key: str, arrival: datetime, setting: Setting) -> Life:
    """Buys a device and never uses it; a few return it, a few activate it late."""
    params = setting.parameters
    rng = setting.generator(key)
    life = _new_life(key, Persona.ONE_TIME_BUYER, arrival, setting)
    life.sync = _device_sync(rng, params)
    price = _buy_device(life, rng, setting, key)
    product = life.happenings[-1].data["items"][0]["sku"]
    if rng.random() < params.refund_rate:
        order = life.happenings[-1].data["order_id"]
        life.refund(
            "refund-device", after(arrival, rng.uniform(2, 30)), order, price, params.currency
        )
    elif rng.random() < params.late_activation_rate:
        activated = after(arrival, rng.uniform(ACTIVATION_WINDOW_DAYS + 1, 60))
        _activate(life, rng, setting, product, activated, rng.uniform(0.5, 5))
        _use(life, setting, params.uses_per_week)
    _identity_link(life, rng, setting)
    return life


def _gift(key: str, arrival: datetime, setting: Setting) -> list[Life]:
    """A payer buys a device for a recipient, who activates and uses it: payer != user."""
    params = setting.parameters
    rng = setting.generator(key)
    payer = _new_life(key, Persona.GIFT_PAYER, arrival, setting)
    recipient_key = f"{key}.g"
    _buy_device(payer, rng, setting, recipient_key)
    product = payer.happenings[-1].data["items"][0]["sku"]
    _identity_link(payer, rng, setting)

    r_rng = setting.generator(recipient_key)
    activated = after(arrival, delay_days(r_rng, params.activation_delay_days, cap=13.5))
    recipient = _new_life(recipient_key, Persona.GIFT_RECIPIENT, activated, setting)
    recipient.device_id = payer.device_id
    recipient.sync = _device_sync(r_rng, params)
    tenure = tenure_days(r_rng, params.tenure_median_days, params.tenure_shape)
    _activate(recipient, r_rng, setting, product, activated, tenure)
    payer.activated_at = activated
    _connected_extras(recipient, r_rng, setting)
    _use(recipient, setting, params.uses_per_week)
    return [payer, recipient]


def _free_user(key: str, arrival: datetime, setting: Setting) -> Life:
    """Uses a device bound to them without paying; some later buy a plan or a service."""
    params = setting.parameters
    rng = setting.generator(key)
    life = _new_life(key, Persona.FREE_USER, arrival, setting)
    life.device_id = setting.ids.device(key)
    life.sync = _device_sync(rng, params)
    tenure = tenure_days(rng, params.tenure_median_days, params.tenure_shape)
    converts = rng.random() < params.free_conversion_rate
    delay = delay_days(rng, params.free_conversion_delay_days)
    if converts:  # paying users keep using at least a while after paying
        tenure = max(tenure, delay + rng.uniform(7, 60))
    _activate(life, rng, setting, FREE_DEVICE, arrival, tenure)
    if converts:
        product = rng.choice(SUBSCRIPTIONS + SERVICES)
        paid = after(arrival, delay)
        order = setting.ids.order(f"{key}/first")
        life.pay("first-payment", paid, order, [(product, None)], params.currency)
        life.first_payment_at = paid
    if rng.random() < params.feedback_rate:
        _feedback(life, rng, "feedback", _while_active(rng, life), rng.choice((3, 4, 5)))
    _identity_link(life, rng, setting)
    _use(life, setting, params.uses_per_week)
    return life


def _super_user(key: str, arrival: datetime, setting: Setting) -> list[Life]:
    """Buys again and again, uses long, gives feedback and brings in new buyers."""
    params = setting.parameters
    rng = setting.generator(key)
    life = _new_life(key, Persona.SUPER_USER, arrival, setting)
    life.sync = _device_sync(rng, params)
    _buy_device(life, rng, setting, key)
    product = life.happenings[-1].data["items"][0]["sku"]
    activated = after(arrival, delay_days(rng, params.activation_delay_days / 2, cap=13.5))
    tenure = params.super_user_tenure_factor * tenure_days(
        rng, params.tenure_median_days, params.tenure_shape
    )
    _activate(life, rng, setting, product, activated, tenure)
    for n in range(count(rng, params.repeat_purchases)):
        item = rng.choice(ACCESSORIES + SUBSCRIPTIONS + SERVICES)
        at = _while_active(rng, life)
        order = setting.ids.order(f"{key}/repeat-{n}")
        life.pay(f"repeat-{n}", at, order, [(item, None)], params.currency)
        if item.category == "accessory" and rng.random() < params.refund_rate:
            life.refund(
                f"refund-{n}",
                after(at, rng.uniform(1, 20)),
                order,
                item.amount_minor,
                params.currency,
            )
    if rng.random() < 0.9:
        for n in range(1 + count(rng, 1.0)):
            _feedback(life, rng, f"feedback-{n}", _while_active(rng, life), rng.choice((4, 5)))
    _identity_link(life, rng, setting)
    brought: list[Life] = []
    for n in range(count(rng, params.referral_rate)):
        referee_key = f"{key}.r{n}"
        joined = _while_active(rng, life)
        brought.extend(_lives(referee_key, Persona.REFERRED, joined, setting))
        life.add(
            f"referral-{n}",
            "referral.completed",
            after(joined, 1 / 24),
            {"referrer_id": life.person_id, "referee_id": setting.ids.person(referee_key)},
        )
    _use(life, setting, 1.5 * params.uses_per_week)
    return [life, *brought]
