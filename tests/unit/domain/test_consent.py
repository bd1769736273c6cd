"""Consent (``person.consent_changed``): last writer by event time per channel, as a semilattice."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenure.domain import (
    DEFAULT_CONFIG,
    DomainEvent,
    PersonConsentChanged,
    PersonState,
    apply_person,
    consent_as_of,
    decode_person_state,
    encode_person_state,
    fold,
    join_persons,
    merge_person,
    person_knowledge,
    person_singleton,
    person_view_at,
    views,
)
from tenure.domain.events import CONSENT_CHANNELS, parse_event
from tenure.domain.pseudonymity import person_ids_named, rename_event
from tenure.domain.schedule import next_change_at

from .scenario import T0, at, consent, erasure, linked, paid
from .strategies import shuffled_with_duplicates

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Few instants, few sources: equal event times (and ids differing only by source) are common.
consent_times = st.integers(0, 5).map(lambda h: T0 + timedelta(hours=h))
consent_ids = st.tuples(st.sampled_from(("app", "crm")), st.integers(0, 30).map(str))


@st.composite
def consent_events(draw: st.DrawFn, person: str = "p1") -> list[DomainEvent]:
    """Distinct consent changes of one person (unique (source, id)), ties in time likely."""
    ids = draw(st.lists(consent_ids, max_size=12, unique=True))
    return [
        PersonConsentChanged(
            eid,
            draw(consent_times),
            person,
            draw(st.sampled_from(CONSENT_CHANNELS)),
            draw(st.booleans()),
        )
        for eid in ids
    ]


def in_event_time_order(events: list[DomainEvent], as_of: datetime) -> dict[str, bool]:
    """The reference: apply the changes one by one in event-time order (a withdrawal after a
    grant at the same instant, then by event id), each overwriting its channel."""
    changes = [e for e in events if isinstance(e, PersonConsentChanged) and e.at <= as_of]
    changes.sort(key=lambda e: (e.at, not e.granted, e.event_id))
    current: dict[str, bool] = {}
    for change in changes:
        current[change.channel] = change.granted
    return dict(sorted(current.items()))


def state_of(events: list[DomainEvent], person: str = "p1") -> PersonState:
    state = PersonState(person)
    for event in events:
        state = apply_person(state, event)
    return state


@PROPERTY
@given(st.data(), consent_events())
def test_consent_applies_in_event_time_order_whatever_the_delivery_order(
    data: st.DataObject, events: list[DomainEvent]
) -> None:
    delivered = data.draw(shuffled_with_duplicates(events))
    as_of = T0 + timedelta(hours=data.draw(st.integers(-1, 6)))
    state = state_of(delivered)
    assert consent_as_of(state, as_of) == in_event_time_order(events, as_of)
    assert dict(person_view_at(state, as_of).consent) == in_event_time_order(events, as_of)
    assert state == state_of(events)


@PROPERTY
@given(consent_events(), consent_events(), consent_events())
def test_consent_merge_is_commutative_associative_and_idempotent(
    a: list[DomainEvent], b: list[DomainEvent], c: list[DomainEvent]
) -> None:
    x, y, z = (join_persons("p1", (person_singleton("p1", e) for e in s)) for s in (a, b, c))
    assert merge_person(x, x) == x
    assert merge_person(x, y) == merge_person(y, x)
    assert merge_person(merge_person(x, y), z) == merge_person(x, merge_person(y, z))


def test_one_event_id_delivered_with_two_payloads_merges_the_same_both_ways() -> None:
    first = PersonConsentChanged(("app", "1"), at(0), "p1", "email", True)
    second = PersonConsentChanged(("app", "1"), at(0), "p1", "email", False)
    x, y = person_singleton("p1", first), person_singleton("p1", second)
    assert merge_person(x, y) == merge_person(y, x)


def test_the_latest_change_wins_and_an_earlier_as_of_sees_the_earlier_value() -> None:
    events = [
        consent("p1", "email", True, 1),
        consent("p1", "email", False, 5),
        consent("p1", "sms", True, 3),
    ]
    state = state_of(list(reversed(events)))
    assert person_view_at(state, at(0)).consent == ()
    assert person_view_at(state, at(4)).consent == (("email", True), ("sms", True))
    assert person_view_at(state, at(6)).consent == (("email", False), ("sms", True))


def test_at_the_same_instant_a_withdrawal_wins_over_a_grant() -> None:
    grant = PersonConsentChanged(("z-app", "9"), at(1), "p1", "push", True)
    withdraw = PersonConsentChanged(("a-app", "1"), at(1), "p1", "push", False)
    for order in ([grant, withdraw], [withdraw, grant]):
        assert consent_as_of(state_of(order), at(2)) == {"push": False}


def test_equal_time_and_value_ties_are_broken_by_the_larger_event_id() -> None:
    # Only the winner's payload is kept in the view, but the state keeps both facts.
    one = PersonConsentChanged(("app", "1"), at(1), "p1", "email", True)
    two = PersonConsentChanged(("app", "2"), at(1), "p1", "email", True)
    assert state_of([one, two]) == state_of([two, one])
    assert len(state_of([one, two]).consent) == 2


def test_consent_of_a_human_is_the_latest_over_all_their_ids() -> None:
    events = [
        consent("p1", "email", True, 1),
        consent("guest-7", "email", False, 2),  # the alias withdrew later
        consent("guest-7", "sms", True, 1),
        consent("p1", "sms", False, 3),  # the person withdrew later
        linked("p1", "guest-7", 4),
    ]
    world = fold(events)
    human = views(world, at(5))["guest-7"]  # the canonical id: the smallest of the human's
    assert human.consent == (("email", False), ("sms", False))


def test_erasure_removes_consent_and_later_changes_are_ignored() -> None:
    world = fold(
        [
            paid("o1", "p1", 0),
            consent("p1", "email", True, 1),
            erasure("p1", 2),
            consent("p1", "sms", True, 3),
        ]
    )
    state = world.persons["p1"]
    assert state.erased and not state.consent
    assert person_view_at(state, at(4)).consent == ()
    assert b"consent" not in encode_person_state(state)


def test_an_erased_alias_takes_the_consent_of_the_whole_human_with_it() -> None:
    world = fold(
        [
            consent("p1", "email", True, 1),
            consent("p2", "push", True, 1),
            linked("p1", "p2", 2),
            erasure("p2", 3),
        ]
    )
    assert world.persons["p1"].erased and not world.persons["p1"].consent


def test_a_consent_change_is_routed_to_its_person_and_its_id_is_pseudonymised() -> None:
    event = consent("p1", "email", True, 1)
    assert person_ids_named(event) == ["p1"]
    renamed = rename_event(event, {"p1": "~p:abc"})
    assert isinstance(renamed, PersonConsentChanged) and renamed.person_id == "~p:abc"


def test_a_future_consent_change_schedules_the_view() -> None:
    state = state_of([consent("p1", "email", True, 1), consent("p1", "email", True, 3)])
    view = person_view_at(state, at(2))
    assert next_change_at(state, view, DEFAULT_CONFIG) == at(3)
    assert person_view_at(state, at(3)).last_fact_at == at(3)


def test_a_person_without_consent_encodes_to_the_bytes_it_always_had() -> None:
    without = state_of([paid("o1", "p1", 0)])
    assert b"consent" not in encode_person_state(without)
    assert decode_person_state(encode_person_state(without)) == without


def test_consent_is_encoded_only_when_present_and_round_trips() -> None:
    state = state_of([consent("p1", "email", True, 1), consent("p1", "sms", False, 2)])
    data = encode_person_state(state)
    document = orjson.loads(data)
    assert [fact["channel"] for _, fact in document["consent"]] == ["email", "sms"]
    assert decode_person_state(data) == state
    assert encode_person_state(decode_person_state(data)) == data
    assert person_knowledge(state) == 2


def test_an_empty_consent_list_is_not_a_canonical_document() -> None:
    document = orjson.loads(encode_person_state(PersonState("p1")))
    document["consent"] = []
    with pytest.raises(ValueError, match="consent"):
        decode_person_state(orjson.dumps(document))


def test_parse_event_reads_the_flag_as_a_boolean() -> None:
    envelope = {
        "specversion": "1.0",
        "id": "1",
        "source": "app",
        "type": "person.consent_changed",
        "time": "2024-01-01T00:00:00Z",
        "data": {"person_id": "p1", "channel": "in_app", "granted": False},
    }
    parsed = parse_event(envelope)
    assert isinstance(parsed, PersonConsentChanged) and parsed.granted is False
