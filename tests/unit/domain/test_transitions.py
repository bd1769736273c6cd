"""Transitions between views, with ids that never change on re-processing."""

from __future__ import annotations

from datetime import UTC, datetime

from tenure.domain import transition_id, transitions

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
