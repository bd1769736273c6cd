"""Renaming person ids to tokens commutes with the fold (docs/design/erasure.md)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain import DomainEvent, PersonErasureRequested, fold
from tenure.domain.neighbourhood import raw_fold
from tenure.domain.pseudonymity import (
    TOKEN_PREFIX,
    is_token,
    person_ids_in_state,
    person_ids_named,
    rename_device_state,
    rename_event,
    rename_events,
    rename_person_state,
)
from tenure.domain.world import views

from .scenario import T0, activated, erasure, item, linked, paid, referred, used
from .strategies import PERSONS, event_sets

AS_OF = datetime(2027, 6, 1, tzinfo=T0.tzinfo)


def tokens_for(ids: set[str]) -> dict[str, str]:
    return {p: f"{TOKEN_PREFIX}{p}x" for p in ids}


def erased_humans(events: list[DomainEvent]) -> set[str]:
    """Every id of every human with an erasure (as the purge renames them)."""
    world = fold(events)
    graph = world.identity
    erased = {e.person_id for e in events if isinstance(e, PersonErasureRequested)}
    return {m for p in erased for m in graph.component(p)} | erased


def test_a_token_is_recognised_and_a_person_id_is_not() -> None:
    assert is_token("~p:abc")
    assert not is_token("p-1") and not is_token("~erased")


def test_rename_event_replaces_only_the_mapped_person_fields() -> None:
    event = paid("o1", "p1", 1, item(device="d1"), beneficiary="p2")
    renamed = rename_event(event, {"p1": "~p:1"})
    assert person_ids_named(renamed) == ["~p:1", "p2"]
    assert rename_event(event, {"zz": "~p:z"}) is event


@settings(max_examples=200, deadline=None)
@given(event_sets(max_size=25), st.sets(st.sampled_from(PERSONS)))
def test_folding_renamed_events_gives_the_renamed_raw_states(
    events: list[DomainEvent], renamed: set[str]
) -> None:
    mapping = tokens_for(renamed)
    plain = raw_fold(events)
    tokenised = raw_fold(rename_events(events, mapping))
    assert {d: rename_device_state(s, mapping) for d, s in plain.devices.items()} == dict(
        tokenised.devices
    )
    assert {
        mapping.get(p, p): rename_person_state(s, mapping) for p, s in plain.person_states.items()
    } == dict(tokenised.person_states)


@settings(max_examples=200, deadline=None)
@given(event_sets(max_size=25))
def test_renaming_erased_humans_changes_nobody_elses_view(events: list[DomainEvent]) -> None:
    mapping = tokens_for(erased_humans(events))
    before = views(fold(events), AS_OF)
    after = views(fold(rename_events(events, mapping)), AS_OF)
    assert after == before
    assert not any(is_token(p) for p in after)


def test_person_ids_in_state_names_gift_payers_beneficiaries_and_referrals() -> None:
    events = [
        paid("o1", "alice", 1, item(device="d1"), beneficiary="bob"),
        referred("alice", "carol", 2),
        referred("dave", "alice", 3),
        paid("o2", "erin", 4, item(device="d2"), beneficiary="alice"),
        activated("d1", "alice", 1),
        used("d1", 2, "alice"),
        linked("alice", "al", 1),
        erasure("zed", 5),
    ]
    state = raw_fold(events).person_states["alice"]
    assert person_ids_in_state(state) == {"bob", "carol", "dave", "erin"}
