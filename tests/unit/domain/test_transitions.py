"""Transitions between views, with ids that never change on re-processing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tenure.domain import transition_id, transitions
from tenure.domain.transitions import TRANSITION_NAMESPACE

from .scenario import activated, at, item, paid, used
from .views import view_of

DAILY = [activated("d1", "p", 0), *(used("d1", n) for n in range(1, 36))]


def test_first_view_reports_every_label_that_left_its_default() -> None:
    found = transitions(None, view_of(DAILY, "p", 1))
    assert {(t.kind, t.old, t.new) for t in found} == {
        ("segment", "prospect", "user_only"),
        ("stage", "none", "new"),
        ("level", "none", "micro"),
        ("tier", "none", "bronze"),
    }


def test_user_becomes_customer() -> None:
    free = view_of(DAILY, "p", 36)
    paying = view_of([*DAILY, paid("o1", "p", 36, item(category="service"))], "p", 36.5)
    kinds = {t.kind: (t.old, t.new) for t in transitions(free, paying)}
    assert kinds["segment"] == ("user_only", "customer_and_user")


def test_stage_transition_id_does_not_depend_on_when_it_is_noticed() -> None:
    active = view_of(DAILY, "p", 36)
    noticed_early = transitions(active, view_of(DAILY, "p", 50))
    noticed_late = transitions(active, view_of(DAILY, "p", 60))
    assert [(t.kind, t.old, t.new) for t in noticed_early] == [("stage", "active", "at_risk")]
    assert noticed_early == noticed_late
    assert noticed_early[0].at == datetime(2024, 2, 20, tzinfo=UTC)


def test_no_change_no_transition() -> None:
    view = view_of(DAILY, "p", 40)
    assert transitions(view, view) == []


def test_transition_id_is_a_deterministic_uuid() -> None:
    first = transition_id("p", "stage", "active", "at_risk", at(50))
    assert first == transition_id("p", "stage", "active", "at_risk", at(50))
    assert len(first) == 36
    assert first != transition_id("p", "stage", "active", "churned", at(50))
    assert first != transition_id("q", "stage", "active", "at_risk", at(50))
    assert first != transition_id("p", "stage", "active", "at_risk", at(51))
    # Pinned: ids published before must never change (computed with uuid.uuid5).
    moment = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    pinned = transition_id("person-7", "stage", "active", "at_risk", moment)
    assert pinned == "b0fe8ecd-659c-5f54-8a42-42baa79eb7bf"


@settings(max_examples=300, deadline=None)
@given(
    person_id=st.text(max_size=40),
    labels=st.tuples(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12)),
    moment=st.datetimes(datetime(1970, 1, 2), datetime(2200, 1, 1), timezones=st.timezones()),
)
def test_transition_id_is_the_uuid5_of_its_fields(
    person_id: str, labels: tuple[str, str, str], moment: datetime
) -> None:
    """The id computed without ``uuid.UUID`` is the documented uuid5, for any text (surrogates
    aside: ids are valid UTF-8) and any instant in any zone."""
    kind, old, new = labels
    assume(not any("\ud800" <= c <= "\udfff" for c in person_id + kind + old + new))
    instant = moment.astimezone(UTC).isoformat(timespec="microseconds")
    name = "\x1f".join((person_id, kind, old, new, instant))
    expected = str(uuid.uuid5(TRANSITION_NAMESPACE, name))
    assert transition_id(person_id, kind, old, new, moment) == expected
