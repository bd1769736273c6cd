"""The simulated population: deterministic, valid, realistic delivery and true to its truth."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from tenure.contract import CloudEvent, validate_event
from tenure.contract.topics import EVENT_TYPES
from tenure.simulation import (
    ACTIVATION_WINDOW_DAYS,
    Persona,
    PersonaShares,
    Simulation,
    SimulationParameters,
    simulate,
)

TOLERANCE = timedelta(seconds=300)
WINDOW = timedelta(days=ACTIVATION_WINDOW_DAYS)


@cache
def population(seed: int = 7, people: int = 600) -> Simulation:
    return simulate(SimulationParameters(people=people, seed=seed))


def time_of(envelope: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(envelope["time"]))


def events_by_person(sim: Simulation) -> dict[str, list[dict[str, object]]]:
    by_source_life: dict[str, list[dict[str, object]]] = defaultdict(list)
    ids = {(d.envelope["source"], d.envelope["id"]): d.envelope for d in sim.deliveries}
    for env in ids.values():
        data = env["data"]
        assert isinstance(data, dict)
        for key in ("person_id", "payer_id", "referrer_id"):
            if key in data:
                by_source_life[data[key]].append(env)
    return by_source_life


def test_the_same_seed_gives_the_same_deliveries_and_another_seed_others() -> None:
    params = SimulationParameters(people=80, seed=3)
    first, second = simulate(params), simulate(params)
    assert first.deliveries == second.deliveries
    assert first.truth == second.truth
    other = simulate(replace(params, seed=4))
    assert {d.envelope["id"] for d in other.deliveries}.isdisjoint(
        d.envelope["id"] for d in first.deliveries
    )


def test_every_envelope_of_a_whole_population_validates_at_its_send_time() -> None:
    sim = population()
    assert len(sim.deliveries) > 20_000
    for d in sim.deliveries:
        result = validate_event(d.envelope, now=d.send_at, future_tolerance=TOLERANCE)
        assert isinstance(result, CloudEvent), (result, d.envelope)


def test_deliveries_are_in_send_order_never_before_the_event_and_within_the_span() -> None:
    sim = population()
    sends = [d.send_at for d in sim.deliveries]
    assert sends == sorted(sends)
    params = sim.parameters
    for d in sim.deliveries:
        assert params.start <= time_of(d.envelope) <= d.send_at <= params.end
    sources = {d.envelope["source"] for d in sim.deliveries}
    assert sources == {f"urn:tenure:simulator:{p.value}" for p in Persona}


def test_every_event_type_occurs_and_exactly_one_erasure() -> None:
    counts = population().truth.events_by_type
    assert set(counts) == set(EVENT_TYPES)
    assert counts["person.erasure_requested"] == 1


def test_a_small_share_of_people_grant_consent_and_some_withdraw_it_later() -> None:
    sim = population()
    changes: dict[str, list[tuple[datetime, str, bool]]] = defaultdict(list)
    for d in sim.deliveries:
        if d.envelope["type"] == "person.consent_changed" and not d.resend:
            data = d.envelope["data"]
            assert isinstance(data, dict)
            changes[data["person_id"]].append(
                (time_of(d.envelope), data["channel"], data["granted"])
            )
    people = {life.person_id for life in sim.lives if life.happenings}
    assert 0.05 * len(people) < len(changes) < 0.15 * len(people)
    withdrawn = 0
    for person_changes in changes.values():
        person_changes.sort()
        assert person_changes[0][2] is True  # granted first
        assert len({channel for _, channel, _ in person_changes}) == 1
        withdrawn += any(not granted for _, _, granted in person_changes)
    assert 0 < withdrawn < len(changes)


def test_duplicates_are_the_same_envelope_resent_at_the_configured_rate() -> None:
    sim = population()
    originals = {
        (d.envelope["source"], d.envelope["id"]): d for d in sim.deliveries if not d.resend
    }
    resends = [d for d in sim.deliveries if d.resend]
    for d in resends:
        first = originals[(d.envelope["source"], d.envelope["id"])]
        assert first.envelope == d.envelope
        assert timedelta(seconds=1) <= d.send_at - first.send_at <= timedelta(minutes=10)
    share = len(resends) / len(originals)
    assert share == pytest.approx(sim.parameters.duplicate_rate, abs=0.005)
    assert sim.truth.duplicates == len(resends)
    assert sim.truth.deliveries == len(sim.deliveries)


def test_offline_devices_sync_late_so_delivery_is_out_of_event_time_order() -> None:
    sim = population()
    params = sim.parameters
    users = [life for life in sim.lives if life.happenings and life.activated_at is not None]
    users = [life for life in users if life.persona != Persona.GIFT_PAYER]
    offline = [life for life in users if life.sync.offline]
    assert len(offline) / len(users) == pytest.approx(params.offline_device_share, abs=0.04)
    late = [d for d in sim.deliveries if not d.resend and d.send_at > time_of(d.envelope)]
    assert late and all(str(d.envelope["type"]).startswith("device.") for d in late)
    assert sim.truth.late == len(late)
    device_events = sum(n for t, n in sim.truth.events_by_type.items() if t.startswith("device."))
    assert 0.05 < len(late) / device_events < 0.3
    mean_delay = sum(((d.send_at - time_of(d.envelope)) / timedelta(days=1)) for d in late) / len(
        late
    )
    assert 0.5 < mean_delay < params.offline_sync_delay_days
    latest, overtaken = datetime.min.replace(tzinfo=UTC), 0
    for d in sim.deliveries:
        t = time_of(d.envelope)
        overtaken += t < latest
        latest = max(latest, t)
    assert overtaken >= len(late) // 2


def test_truth_counts_match_the_lives_and_the_envelopes() -> None:
    sim = population()
    truth = sim.truth
    arrived = Counter(life.persona for life in sim.lives if life.arrival <= sim.parameters.end)
    assert {p: n for p, n in truth.people.items() if n} == dict(arrived)
    assert truth.people["gift-payer"] == truth.people["gift-recipient"]
    base = sum(
        truth.people[p.value]
        for p in Persona
        if p not in {Persona.GIFT_RECIPIENT, Persona.REFERRED}
    )
    assert base == sim.parameters.people
    types = Counter(d.envelope["type"] for d in sim.deliveries if not d.resend)
    assert dict(types) == truth.events_by_type
    assert truth.people["referred"] >= types["referral.completed"] > 0
    assert truth.drawn_median_tenure_days == pytest.approx(
        sim.parameters.tenure_median_days, rel=0.3
    )
    assert truth.activation_share is not None and 0.6 < truth.activation_share < 0.85
    assert truth.conversion_share is not None and truth.conversion_share < 0.5


def test_one_time_buyers_pay_for_a_device_and_do_not_activate_within_14_days() -> None:
    sim = population()
    one_timers = [life for life in sim.lives if life.persona == Persona.ONE_TIME_BUYER]
    assert one_timers
    late_activations = 0
    for life in one_timers:
        kinds = [h.type for h in life.happenings]
        payment = life.happenings[0]
        assert payment.type == "payment.completed"
        assert payment.data["items"][0]["category"] == "hardware"
        assert payment.data["items"][0]["device_id"] == life.device_id
        if "device.activated" in kinds:
            late_activations += 1
            activation = next(h for h in life.happenings if h.type == "device.activated")
            assert activation.time - payment.time > WINDOW
    assert late_activations < len(one_timers) * 0.15


def test_connected_buyers_activate_within_days_and_use_until_their_tenure_ends() -> None:
    sim = population()
    for life in sim.lives:
        if life.persona != Persona.CONNECTED_BUYER:
            continue
        assert life.activated_at is not None and life.bought_device_at is not None
        assert life.activated_at - life.bought_device_at < WINDOW
        uses = [h.time for h in life.happenings if h.type == "device.used"]
        assert all(life.activated_at <= t <= (life.stopped_at or t) for t in uses)


def test_a_gift_is_paid_by_one_person_and_used_by_another() -> None:
    sim = population()
    by_key = {life.key: life for life in sim.lives}
    payers = [life for life in sim.lives if life.persona == Persona.GIFT_PAYER]
    assert payers
    for payer in payers:
        recipient = by_key[f"{payer.key}.g"]
        payment = payer.happenings[0].data
        activation = next(h for h in recipient.happenings if h.type == "device.activated").data
        assert payment["payer_id"] == payer.person_id != recipient.person_id
        assert payment["beneficiary_id"] == recipient.person_id == activation["person_id"]
        assert payment["items"][0]["device_id"] == activation["device_id"]
        assert not any(h.type == "device.activated" for h in payer.happenings)


def test_free_users_use_without_paying_until_some_convert() -> None:
    sim = population()
    free = [life for life in sim.lives if life.persona == Persona.FREE_USER]
    converted = 0
    for life in free:
        payments = [h for h in life.happenings if h.type == "payment.completed"]
        assert life.happenings[0].type == "device.activated"
        if payments:
            converted += 1
            assert life.first_payment_at == payments[0].time
            assert payments[0].data["items"][0]["category"] in ("subscription", "service")
    assert 0 < converted < len(free)


def test_super_users_refer_generated_people_who_buy() -> None:
    sim = population()
    people = {life.person_id: life for life in sim.lives}
    referrals = [
        h
        for life in sim.lives
        if life.persona == Persona.SUPER_USER
        for h in life.happenings
        if h.type == "referral.completed"
    ]
    assert referrals
    for referral in referrals:
        referee = people[referral.data["referee_id"]]
        assert referee.persona == Persona.REFERRED
        assert referee.bought_device_at is not None
        assert referee.bought_device_at <= referral.time
        assert people[referral.data["referrer_id"]].persona == Persona.SUPER_USER


def test_refunds_repay_a_whole_order_of_the_same_payer() -> None:
    sim = population()
    orders = {}
    for d in sim.deliveries:
        if d.envelope["type"] == "payment.completed":
            data = d.envelope["data"]
            orders[data["order_id"]] = data
    refunds = [d.envelope for d in sim.deliveries if d.envelope["type"] == "payment.refunded"]
    assert refunds
    for env in refunds:
        data = env["data"]
        order = orders[data["order_id"]]
        assert order["payer_id"] == data["payer_id"]
        assert data["amount_minor"] == sum(i["amount_minor"] for i in order["items"])


def test_the_continuation_keeps_living_in_send_order_after_the_span() -> None:
    params = SimulationParameters(people=60, seed=11)
    sim = simulate(params)
    later = list(itertools.islice(sim.continuation(arrivals_per_hour=30), 3000))
    again = list(itertools.islice(sim.continuation(arrivals_per_hour=30), 3000))
    assert later == again
    sends = [d.send_at for d in later]
    assert sends == sorted(sends) and sends[0] > params.end
    for d in later:
        assert isinstance(
            validate_event(d.envelope, now=d.send_at, future_tolerance=TOLERANCE), CloudEvent
        )
    seen = {(d.envelope["source"], d.envelope["id"]) for d in sim.deliveries if not d.resend}
    fresh = [d for d in later if not d.resend]
    assert all((d.envelope["source"], d.envelope["id"]) not in seen for d in fresh)
    assert any(str(d.envelope["source"]).endswith("one-time-buyer") for d in later)


def test_the_continuation_sends_what_the_span_did_not_and_nothing_twice() -> None:
    short = simulate(SimulationParameters(people=50, days=100, seed=5))
    follow = list(itertools.islice(short.continuation(0), 10_000))
    ids = [d.envelope["id"] for d in short.deliveries] + [d.envelope["id"] for d in follow]
    assert len(ids) == len(set(ids)) + short.truth.duplicates + sum(d.resend for d in follow)


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError):
        SimulationParameters(duplicate_rate=1.5)
    with pytest.raises(ValueError):
        SimulationParameters(start=datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        SimulationParameters(shares=PersonaShares(0, 0, 0, 0, 0))
    only_free = simulate(
        SimulationParameters(people=20, shares=PersonaShares(0, 0, 0, 1, 0), erasure=False)
    )
    assert only_free.truth.people["free-user"] == 20
    assert "payment.refunded" not in only_free.truth.events_by_type
