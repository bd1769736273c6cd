"""The live churn counts, fed by the real projector, equal the counts of the pure fold.

Streams a scenario with duplicates and out-of-order events through the real projector
(apply, derive with its churn hook, and the aggregates stage that drains the churn queue)
and compares the return-time counts with those computed afresh from every person's
engagement days in the pure fold of the same events.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tenure.analytics.live.churn_model import read_counts
from tenure.analytics.return_times import ReturnTimeCounts, person_gaps
from tenure.domain.activity import engagement_days
from tenure.domain.events import parse_event
from tenure.domain.world import fold
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.runtime.broker import LocalBroker
from tests.factories import scenario
from tests.integration.test_survival_live import LATENESS, project_all

pytestmark = pytest.mark.kafka


def test_live_churn_counts_equal_the_pure_fold(
    broker: LocalBroker, embedded_only: None, pool, database_url: str
) -> None:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(41, 40, source="urn:tenure:churn-live-test", end=end)
    rng = random.Random(3)
    stream = events + rng.sample(events, 40)  # duplicates
    rng.shuffle(stream)  # out of order
    publisher = EventPublisher(broker.bootstrap)
    projector = Projector(pool, publisher, allowed_lateness=LATENESS, derive_budget_s=0.05)
    try:
        project_all(projector, stream, rng)
    finally:
        publisher.close()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT person_id, as_of FROM persons").fetchall()
        live = read_counts(conn)
        pending = conn.execute("SELECT count(*) FROM churn_pending").fetchone()
    assert pending == (0,)
    world = fold(parse_event(e) for e in events)
    fresh = ReturnTimeCounts.of(
        person_gaps(engagement_days(world.persons[pid], as_of)) for pid, as_of in rows
    )
    assert sum(sum(c.values()) for c in fresh.returns.values()) > 100
    assert live.returns == fresh.returns
    assert live.open_since == fresh.open_since
