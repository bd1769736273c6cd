"""The audience stage's pure decision (``tenure.projection.audiences.decide``): entries,
exits, suppression by consent and by the quiet period, contacts and the schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tenure.domain.audience import parse_audience
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.domain.view import PersonView
from tenure.projection.audiences import (
    ENTERED,
    EXITED,
    SUPPRESSION_CHANGED,
    change_event,
    change_id,
    decide,
)
from tenure.storage.audience_members import Change, Member

T = datetime(2026, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)
ACTIVE_USERS = parse_audience(
    {
        "name": "active-users",
        "description": "users in use",
        "channel": "email",
        "quiet_days": 7,
        "filter": {"segment": ["user_only"], "stage": ["active"]},
    }
)
SET_UP = parse_audience(
    {
        "name": "set-up",
        "description": "bought, not activated, 2 to 30 days ago",
        "channel": "email",
        "quiet_days": 7,
        "filter": {"activated": False, "days_since_purchase": {"min": 2, "max": 30}},
    }
)


def user(at: datetime, *, email: bool | None = True, stage: Stage = Stage.ACTIVE) -> PersonView:
    consent = () if email is None else (("email", email),)
    return PersonView("p", at, segment=Segment.USER_ONLY, stage=stage, consent=consent)


def test_a_person_who_qualifies_enters_contactable_and_that_is_a_contact() -> None:
    decision = decide(ACTIVE_USERS, user(T), None, None, None)
    assert decision.kind == ENTERED
    assert decision.member == Member(ACTIVE_USERS.version, T, None)
    assert decision.contacted


def test_without_consent_a_member_is_suppressed_and_not_contacted() -> None:
    for email in (None, False):  # never spoken of, or withdrawn
        decision = decide(ACTIVE_USERS, user(T, email=email), None, None, None)
        assert decision.kind == ENTERED and decision.member is not None
        assert decision.member.suppressed == "no_consent"
        assert not decision.contacted


def test_granting_consent_lifts_the_suppression_and_is_a_contact() -> None:
    suppressed = Member(1, T, "no_consent")
    decision = decide(ACTIVE_USERS, user(T + DAY), None, suppressed, None)
    assert decision.kind == SUPPRESSION_CHANGED
    assert decision.member == Member(1, T, None)  # still the same entry
    assert decision.contacted


def test_a_contactable_member_is_not_suppressed_by_its_own_contact() -> None:
    member = Member(1, T, None)
    decision = decide(ACTIVE_USERS, user(T + DAY), None, member, T)
    assert decision.kind is None and decision.member == member and not decision.contacted


def test_withdrawing_consent_suppresses_a_member() -> None:
    decision = decide(ACTIVE_USERS, user(T + DAY, email=False), None, Member(1, T, None), T)
    assert decision.kind == SUPPRESSION_CHANGED
    assert decision.member is not None and decision.member.suppressed == "no_consent"


def test_re_entry_inside_the_quiet_period_is_suppressed_until_it_ends() -> None:
    left = decide(ACTIVE_USERS, user(T + DAY, stage=Stage.AT_RISK), None, Member(1, T, None), T)
    assert left.kind == EXITED and left.member is None
    back = decide(ACTIVE_USERS, user(T + 3 * DAY), None, None, T)
    assert back.kind == ENTERED and back.member is not None
    assert back.member.suppressed == "quiet_period" and not back.contacted
    assert back.due == T + 7 * DAY  # the quiet period ends: evaluate again then
    later = decide(ACTIVE_USERS, user(T + 7 * DAY), None, back.member, T)
    assert later.kind == SUPPRESSION_CHANGED and later.contacted
    assert later.member == Member(1, T + 3 * DAY, None)


def test_re_entry_after_the_quiet_period_is_contactable() -> None:
    back = decide(ACTIVE_USERS, user(T + 8 * DAY), None, None, T)
    assert back.kind == ENTERED and back.member is not None and back.member.suppressed is None


def test_a_time_term_schedules_the_entry_and_the_exit() -> None:
    bought = PersonView("p", T, first_paid_order_at=T, consent=(("email", True),))
    early = decide(SET_UP, bought, None, None, None)
    assert early.kind is None and early.member is None and early.due == T + 2 * DAY
    inside = decide(SET_UP, PersonView("p", T + 2 * DAY, first_paid_order_at=T), None, None, None)
    assert inside.kind == ENTERED and inside.due == T + 31 * DAY


def test_an_erased_view_exits() -> None:
    gone = PersonView("p", T, erased=True)
    assert decide(ACTIVE_USERS, gone, None, Member(1, T, None), T).kind == EXITED


def test_change_ids_are_deterministic_and_distinguish_changes() -> None:
    one = change_id("a", 1, "p", ENTERED, T, None)
    assert one == change_id("a", 1, "p", ENTERED, T, None)
    others = {
        change_id("b", 1, "p", ENTERED, T, None),
        change_id("a", 2, "p", ENTERED, T, None),
        change_id("a", 1, "q", ENTERED, T, None),
        change_id("a", 1, "p", EXITED, T, None),
        change_id("a", 1, "p", ENTERED, T + DAY, None),
        change_id("a", 1, "p", ENTERED, T, "no_consent"),
    }
    assert one not in others and len(others) == 6


def test_the_event_carries_the_token_only() -> None:
    change = Change(change_id("a", 1, "alice", ENTERED, T, None), "a", 1, "alice", ENTERED,
                    None, T)  # fmt: skip
    event = change_event(change, "~p:tok")
    assert event["subject"] == event["data"]["person_id"] == "~p:tok"
    assert "alice" not in str(event)
