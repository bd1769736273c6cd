"""Live audience membership on real Postgres (docs/audiences.md, "Live membership").

- Membership equals ``is_member`` applied to the pure fold's views at the same as-of, for
  random event sets delivered in random orders with duplicates (hypothesis).
- A watermark advance alone (no new facts) moves people in and out, and only the persons
  whose audience schedule or row came due are evaluated.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool

from tenure.analytics.churn_risk import ChurnRiskTable
from tenure.domain.audience import AudienceDefinition, is_member, parse_audience
from tenure.domain.events import DeviceUsed, DomainEvent, PersonConsentChanged, parse_event
from tenure.domain.view import DEFAULT_CONFIG
from tenure.domain.world import fold, views
from tenure.projection import survival_stage
from tenure.projection.apply import apply_events
from tenure.projection.audiences import AudienceStage, RiskSource, churn_risk_of
from tenure.projection.derive import derive_pass, queue_due_persons
from tenure.storage import audience_definitions
from tenure.storage import audience_members as store
from tenure.storage.person_changes import ChangeCursor
from tenure.storage.progress import projection_watermark, record_progress
from tests.factories import scenario
from tests.unit.domain.strategies import event_sets, shuffled_with_duplicates

LATENESS = timedelta(hours=1)
PARTITION = ("tenure.test.v1", 0)
END = datetime(2026, 3, 1, tzinfo=UTC)

EXTRA = [
    parse_audience(d)
    for d in (
        {
            "name": "customers-push",
            "description": "everyone who paid, push",
            "channel": "push",
            "quiet_days": 2,
            "filter": {"segment": ["customer_only", "customer_and_user"]},
        },
        {
            "name": "recent-buyers-email",
            "description": "bought 1 to 10 days ago, email",
            "channel": "email",
            "quiet_days": 5,
            "filter": {"days_since_purchase": {"min": 1, "max": 10}},
        },
        {
            "name": "quiet-users-sms",
            "description": "users silent 3 to 20 days, sms",
            "channel": "sms",
            "quiet_days": 3,
            "filter": {"days_since_last_engagement": {"min": 3, "max": 20}},
        },
    )
]


def audiences() -> list[AudienceDefinition]:
    """The five shipped audiences, a broad one and two with more time terms."""
    return [*audience_definitions.shipped_audiences(), *EXTRA]


DEFINITIONS = audiences()


@contextmanager
def copy_of(database_url: str) -> Iterator[str]:
    """A fresh database made from the migrated one (a template copy: fast)."""
    base = database_url.rsplit("/", 1)
    template = base[1].split("?")[0]
    name = f"c_{uuid.uuid4().hex[:10]}"
    admin = base[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield f"{base[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def settle(
    conn: psycopg.Connection[Any], stage: AudienceStage, pool: ConnectionPool | None = None
) -> set[str]:
    """What the worker does between batches: queue the due rows, derive everything queued,
    (with ``pool``: the aggregates stage, so the churn model learns), then the audience stage
    until it finds nothing; return the persons it evaluated."""
    with conn.transaction():
        queue_due_persons(conn, LATENESS)
    while derive_pass(conn, allowed_lateness=LATENESS, limit=200).persons:
        pass
    if pool is not None:
        survival_stage.refresh(pool, LATENESS, DEFAULT_CONFIG)
    seen: set[str] = set()
    while (result := stage.run_pass(conn, LATENESS)).evaluated:
        seen |= result.persons
    return seen


def membership(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], str | None]:
    rows = conn.execute("SELECT audience, person_id, suppressed FROM audience_members").fetchall()
    return {(str(a), str(p)): s for a, p, s in rows}


def expected(
    events: Sequence[DomainEvent], as_of: datetime, risks: ChurnRiskTable | None
) -> set[tuple[str, str]]:
    """Membership by the pure fold's views at ``as_of``, each view's churn risk read from
    ``risks`` (the live model; ``None``: no model, the risk is unknown)."""
    return {
        (d.name, person)
        for person, view in views(fold(events), as_of).items()
        for d in DEFINITIONS
        if is_member(d, view, None if risks is None else churn_risk_of(risks, view))
    }


def assert_matches_the_fold(
    conn: psycopg.Connection[Any], events: Sequence[DomainEvent], *, risk: bool = False
) -> datetime:
    as_of = projection_watermark(conn, LATENESS)
    assert as_of is not None
    got = membership(conn)
    risks = RiskSource().table(conn, as_of) if risk else None
    assert set(got) == expected(events, as_of, risks)
    consent = {p: dict(v.consent) for p, v in views(fold(events), as_of).items()}
    channel = {d.name: str(d.channel) for d in DEFINITIONS}
    for (audience, person), reason in got.items():  # consent does not depend on the path
        granted = consent[person].get(channel[audience]) is True
        assert (reason == "no_consent") is (not granted), (audience, person, reason)
    return as_of


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_membership_equals_the_filter_over_the_fold_in_any_delivery_order(
    database_url: str, data: st.DataObject
) -> None:
    events = data.draw(event_sets(max_size=18))
    delivery = data.draw(shuffled_with_duplicates(events))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(delivery)), max_size=3)))
    batches = [delivery[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivery)], strict=True)]
    stage = AudienceStage(lambda conn: DEFINITIONS)
    with copy_of(database_url) as url, psycopg.connect(url, autocommit=True) as conn:
        for batch in batches:
            if not batch:
                continue
            with conn.transaction():
                apply_events(conn, batch, {PARTITION: max(e.at for e in batch)})
            settle(conn, stage)
        if events:
            assert_matches_the_fold(conn, events)


def test_time_alone_moves_people_in_and_out_and_only_due_persons_are_evaluated(
    database_url: str,
) -> None:
    events = [parse_event(e) for e in scenario(11, 60, source="urn:test:audiences", end=END)]
    first = max(e.at for e in events)
    stage = AudienceStage(lambda conn: DEFINITIONS)
    moved_by_time = 0
    cared = 0
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        ConnectionPool(database_url, min_size=1, max_size=2) as pool,
    ):
        with conn.transaction():
            apply_events(conn, events, {PARTITION: first})
        everyone = settle(conn, stage, pool)
        assert len(everyone) > 40
        before = membership(conn)
        assert_matches_the_fold(conn, events, risk=True)
        for day in range(1, 36):
            moved = first + timedelta(days=day)
            as_of = moved - LATENESS
            due = {str(r[0]) for r in conn.execute(
                "SELECT person_id FROM audience_due WHERE due_at <= %s UNION"
                " SELECT person_id FROM persons WHERE next_change_at <= %s", (as_of, as_of)
            )}  # fmt: skip
            with conn.transaction():
                record_progress(conn, {PARTITION: moved})
            seen = settle(conn, stage, pool)
            assert seen <= due, sorted(seen - due)
            assert len(seen) < len(everyone)
            after = membership(conn)
            moved_by_time += len(set(after) ^ set(before))
            cared += sum(a == "care-before-churn" for a, _ in after)
            assert_matches_the_fold(conn, events, risk=True)
            before = after
    assert moved_by_time > 0  # time alone moved someone in or out
    assert cared > 0  # the churn-risk audience was exercised with a learned model


def test_a_re_entry_inside_the_quiet_period_is_suppressed_until_it_ends(
    database_url: str,
) -> None:
    daily = parse_audience(
        {
            "name": "used-lately",
            "description": "used a device in the last day",
            "channel": "email",
            "quiet_days": 10,
            "filter": {"days_since_last_engagement": {"max": 1}},
        }
    )
    stage = AudienceStage(lambda conn: [daily])
    start = END - timedelta(days=30)

    def at(day: float) -> datetime:
        return start + timedelta(days=day)

    def used(day: int) -> DomainEvent:
        return DeviceUsed(("t", f"u{day}"), at(day), "w-carol", "carol")

    def other(day: int) -> DomainEvent:  # moves the watermark, about someone else
        return DeviceUsed(("t", f"o{day}"), at(day), "w-dan", "dan")

    consent = PersonConsentChanged(("t", "c"), at(0), "carol", "email", True)
    with psycopg.connect(database_url, autocommit=True) as conn:

        def deliver(events: list[DomainEvent], until: float) -> None:
            with conn.transaction():
                apply_events(conn, events, {PARTITION: at(until) + LATENESS})
            settle(conn, stage)

        deliver([consent, used(0)], 0.5)
        assert membership(conn)[("used-lately", "carol")] is None  # in, contacted
        deliver([other(3)], 3)
        assert ("used-lately", "carol") not in membership(conn)  # silent 3 days: out
        deliver([used(4)], 4.5)
        assert membership(conn)[("used-lately", "carol")] == "quiet_period"
        for day in range(5, 12):  # she keeps using it; the quiet period ends on day 10.5
            deliver([used(day)], day + 0.5)
            want = "quiet_period" if day + 0.5 < 10.5 else None
            assert membership(conn)[("used-lately", "carol")] == want, day
        kinds = [
            (str(k), s)
            for k, s in conn.execute(
                "SELECT kind, suppressed FROM audience_changes WHERE person_id = 'carol'"
                " ORDER BY seq"
            )
        ]
        assert kinds == [("entered", None), ("exited", None), ("entered", "quiet_period"),
                         ("suppression_changed", None)]  # fmt: skip
        contacted = conn.execute(
            "SELECT contacted_at FROM audience_contacts WHERE person_id = 'carol'"
        ).fetchone()
        assert contacted == (at(10.5),)


def test_members_of_an_audience_no_longer_current_exit(database_url: str) -> None:
    events = [parse_event(e) for e in scenario(5, 30, source="urn:test:retire", end=END)]
    current = list(DEFINITIONS)
    stage = AudienceStage(lambda conn: current)
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            apply_events(conn, events, {PARTITION: max(e.at for e in events)})
        settle(conn, stage)
        before = membership(conn)
        gone = next(d.name for d in current if any(a == d.name for a, _ in before))
        current[:] = [d for d in current if d.name != gone]
        seen = settle(conn, stage)
        after = membership(conn)
        assert after == {k: v for k, v in before.items() if k[0] != gone}
        assert seen == {p for a, p in before if a == gone}  # only its members were touched
        exited = conn.execute(
            "SELECT count(*) FROM audience_changes WHERE audience = %s AND kind = 'exited'",
            (gone,),
        ).fetchone()
        assert exited == (len(before) - len(after),)
        assert stage.run_pass(conn, LATENESS).evaluated == 0  # its position is forgotten


def test_erasure_leaves_no_id_in_the_audience_tables(database_url: str) -> None:
    at = END
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        store.move_positions(conn, {"a": store.Position(1, ChangeCursor(7, "ann"))})
        store.write(
            conn,
            store.Writes(
                entered={("a", "ann"): store.Member(1, at, None)},
                exited={("b", "ann"): at},
                contacts={("a", "ann"): at},
                due={"ann": at},
                changes=[store.Change("e1", "a", 1, "ann", "entered", None, at)],
                forget=set(),
            ),
        )
        store.erase(conn, {"ann": "~p:ann"})
        assert (store.claim_stage(conn) or {})["a"] == store.Position(1, ChangeCursor(7, ""))
        for table in ("audience_members", "audience_exits", "audience_contacts",
                      "audience_due", "audience_changes", "audience_positions"):  # fmt: skip
            held = conn.execute(f"SELECT count(*) FROM {table} WHERE person_id = 'ann'").fetchone()
            assert held == (0,), table
        assert store.members_of(conn, ["~p:ann"]) == {("a", "~p:ann"): store.Member(1, at, None)}
