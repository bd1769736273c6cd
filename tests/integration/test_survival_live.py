"""Live survival aggregates equal a from-scratch computation over the persons table.

Streams a scenario with duplicates and out-of-order events through the real projector
(apply, derive and the aggregates stage) and compares the aggregate tables with the counts
of every persons row's contribution computed afresh; then swaps in a rebuilt persons table
(the replay write path) and compares again, and keeps streaming on the swapped table.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from psycopg.rows import dict_row

from tenure.analytics.survival_contribution import contribution_of, total
from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.schedule import next_change_at
from tenure.domain.view import DEFAULT_CONFIG
from tenure.domain.world import fold, views
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord
from tenure.projection.replay import aliases_by_person
from tenure.runtime.broker import LocalBroker
from tenure.storage.read_models import Checkpoint, device_row, rebuild, stored_person_row
from tenure.storage.survival_aggregates import PERSON_INPUTS, read_aggregates, read_contributions
from tests.factories import scenario

pytestmark = pytest.mark.kafka

LATENESS = timedelta(hours=1)


def from_scratch(database_url: str) -> tuple[dict, dict]:
    """Aggregates and contributions computed afresh from every persons row."""
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {', '.join(PERSON_INPUTS)} FROM persons").fetchall()
    contributions = {r["person_id"]: contribution_of(r) for r in rows}
    return total(contributions.values()), contributions


def live(database_url: str) -> tuple[dict, dict, int]:
    with psycopg.connect(database_url) as conn:
        queued = conn.execute("SELECT count(*) FROM survival_dirty").fetchone()
        return read_aggregates(conn), read_contributions(conn), int(queued[0]) if queued else 0


def now_table(database_url: str) -> tuple[dict, dict]:
    """``survival_tenure_now`` and the same life table counted from the contributions."""
    with psycopg.connect(database_url) as conn:
        state = conn.execute(
            "SELECT (as_of AT TIME ZONE 'UTC')::date - churn_window_days FROM survival_state"
        ).fetchone()
        rows = conn.execute("SELECT * FROM survival_tenure_now").fetchall()
        contributions = read_contributions(conn)
    assert state is not None and state[0] is not None
    want: dict = {}
    for c in contributions.values():
        if c.tenure_days is None:
            continue
        event = bool(c.churned) or c.last_day <= state[0]
        for g in c.groups:
            counts = want.setdefault((g, c.tenure_days), [0, 0])
            counts[0 if event else 1] += 1
    return {(g, d): [e, n] for g, d, e, n in rows}, want


def assert_live_equals_scratch(database_url: str) -> int:
    aggregates, contributions, queued = live(database_url)
    want_aggregates, want_contributions = from_scratch(database_url)
    assert queued == 0
    assert contributions == want_contributions
    assert aggregates == want_aggregates
    got_now, want_now = now_table(database_url)
    assert got_now == want_now
    return len(want_contributions)


def project_all(projector: Projector, events: list[dict], rng: random.Random) -> None:
    recs = [
        IncomingRecord("t", rng.randrange(4), i, b"k", orjson.dumps(e))
        for i, e in enumerate(events)
    ]
    i = 0
    while i < len(recs):
        size = rng.randint(1, 120)
        projector.project(recs[i : i + size])
        i += size
    for _ in range(50):
        projector.settle(budget_s=5)
        if projector.backlog() == (0, 0):
            return
    raise AssertionError(f"backlog did not drain: {projector.backlog()}")


def test_live_aggregates_equal_scratch_through_stream_and_replay(
    broker: LocalBroker, embedded_only: None, pool, database_url: str
) -> None:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(31, 40, source="urn:tenure:survival-test", end=end)
    later = [e for e in events if parse_event(e).at > end - timedelta(days=20)]
    early = [e for e in events if parse_event(e).at <= end - timedelta(days=20)]
    rng = random.Random(8)
    first = early + rng.sample(early, 50)  # duplicates
    rng.shuffle(first)  # out of order
    publisher = EventPublisher(broker.bootstrap)
    projector = Projector(pool, publisher, allowed_lateness=LATENESS, derive_budget_s=0.05)
    try:
        project_all(projector, first, rng)
        assert assert_live_equals_scratch(database_url) > 20

        # Replay's write path: a fresh persons table from the pure fold, swapped in.
        world = fold(parse_event(e) for e in early)
        as_of = max(parse_event(e).at for e in early) - LATENESS
        aliases = aliases_by_person(world)
        persons = [
            stored_person_row(
                v, aliases.get(p, ()), next_change_at(world.persons[p], v, DEFAULT_CONFIG)
            )
            for p, v in views(world, as_of).items()
        ]
        devices = [device_row(device_view_of(s)) for s in world.devices.values()]
        with psycopg.connect(database_url) as conn:
            rebuild(conn, persons, devices, Checkpoint("lifecycle", as_of, 0, len(early)))
        assert_live_equals_scratch(database_url)

        # The swapped-in table keeps feeding the aggregates (triggers re-installed).
        second = later + rng.sample(events, 30)
        rng.shuffle(second)
        project_all(projector, second, rng)
        n = assert_live_equals_scratch(database_url)
    finally:
        publisher.close()
    with psycopg.connect(database_url) as conn:
        derived = conn.execute("SELECT count(*) FROM persons").fetchone()
    assert derived is not None and n == derived[0]


def test_a_projector_built_without_live_aggregates_leaves_them_queued(
    broker: LocalBroker, embedded_only: None, pool, database_url: str
) -> None:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(7, 8, source="urn:tenure:survival-off-test", end=end)
    rng = random.Random(3)
    publisher = EventPublisher(broker.bootstrap)
    try:
        without = Projector(pool, publisher, allowed_lateness=LATENESS, live_aggregates=False)
        project_all(without, events, rng)
        _, contributions, queued = live(database_url)
        assert queued > 0 and contributions == {}  # the benchmark's "without the stage"

        with_stage = Projector(pool, publisher, allowed_lateness=LATENESS)
        with_stage.settle(budget_s=5)  # the default runs the stage, which drains the queue
        assert assert_live_equals_scratch(database_url) > 0
    finally:
        publisher.close()


def test_a_projector_leaving_the_aggregates_to_its_caller_drains_them_on_request(
    broker: LocalBroker, embedded_only: None, pool, database_url: str
) -> None:
    """The worker's set-up: derive passes never run the aggregates stage; the worker runs
    ``refresh_aggregates`` on its own cadence, and that brings them up to date."""
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(7, 8, source="urn:tenure:survival-apart-test", end=end)
    publisher = EventPublisher(broker.bootstrap)
    try:
        apart = Projector(pool, publisher, allowed_lateness=LATENESS, aggregates_in_derive=False)
        project_all(apart, events, random.Random(5))
        _, contributions, queued = live(database_url)
        assert queued > 0 and contributions == {}  # derive left the stage alone

        assert apart.refresh_aggregates() > 0
        assert assert_live_equals_scratch(database_url) > 0
    finally:
        publisher.close()
