"""The live churn counts, fed by the real projector, equal the counts of the pure fold.

Streams a scenario with duplicates and out-of-order events through the real projector
(apply, derive with its churn hook, and the aggregates stage that drains the churn queue)
and compares the return-time counts with those computed afresh from every person's
engagement days in the pure fold of the same events.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import psycopg
import pytest
from psycopg.rows import dict_row

from services.query.churn import estimate_of
from tenure.analytics.return_times import ReturnTimeCounts, bucket_after, fit, person_gaps
from tenure.domain.activity import engagement_days
from tenure.domain.events import parse_event
from tenure.domain.world import fold
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.runtime.broker import LocalBroker
from tenure.storage.churn_model import read_counts, read_risk_table
from tenure.storage.survival_reads import aggregate_state
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

    # The churn risk the query API answers for the projected rows (the persons routes and
    # /v1/churn/persons share ChurnRiskTable.estimate) is the pure model fitted to the pure
    # fold's population, at the person's silence and bucket from the pure fold.
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        state = aggregate_state(conn)
        at = state.as_of or max(as_of for _, as_of in rows)
        table = read_risk_table(conn, at.astimezone(UTC).date(), state.churn_window_days)
        stored = cur.execute("SELECT * FROM persons").fetchall()
    model = fit(fresh, at.astimezone(UTC).date())
    compared = 0
    for row in stored:
        days = sorted(engagement_days(world.persons[row["person_id"]], row["as_of"]))
        risk = estimate_of(table, row).probability
        if not days:
            assert risk is None
            continue
        gaps = [(b - a).days for a, b in pairwise(days)]
        silence = max(0, (at.astimezone(UTC).date() - days[-1]).days)
        expected = model.silent_probability(bucket_after(gaps), silence, state.churn_window_days)
        assert risk == round(expected, 4), row["person_id"]
        compared += 1
    assert compared > 20
