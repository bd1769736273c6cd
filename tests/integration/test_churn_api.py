"""The churn API: a person's probability at read time, and the live backtest.

A scenario is archived and replayed (persons rows and, through the replay hook, the churn
counts from the same fold); the real query service answers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from services.query.app import create_app
from tenure.analytics.churn_backtest import backtest
from tenure.analytics.return_times import ReturnTimeCounts, bucket_after, fit, person_gaps
from tenure.domain.activity import engagement_days
from tenure.domain.events import parse_event
from tenure.domain.world import fold
from tenure.projection.replay import replay
from tenure.storage.tokens import create_token
from tests.factories import scenario
from tests.integration.conftest import ServerThread
from tests.integration.pipeline import archive_events

W = 30


@pytest.fixture
def served(pool, database_url: str):
    events = scenario(11, 150, source="urn:tenure:churn-api-test", end=datetime.now(UTC))
    with pool.connection() as conn, conn.transaction():
        archive_events(conn, events)
        token = create_token(conn, "dashboard", scope="read")
    result = replay(database_url, allowed_lateness=timedelta(0))
    world = fold(parse_event(e) for e in events)
    with psycopg.connect(database_url) as conn:  # replay rebuilt the churn counts too
        counted = conn.execute("SELECT count(*) FROM churn_gap_contributions").fetchone()
        conn.execute(
            "INSERT INTO survival_state (as_of, churn_window_days) SELECT %s, %s"
            " WHERE NOT EXISTS (SELECT 1 FROM survival_state)",
            (result.as_of, W),
        )
        conn.commit()
    assert counted is not None and counted[0] > 50
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        persons = cur.execute("SELECT * FROM persons").fetchall()
    with ServerThread(create_app(pool=pool)) as server:
        yield server.url, token, persons, world, result.as_of


def get(url: str, token: str | None, path: str, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}{path}", headers=headers, params=params, timeout=30)


def test_a_persons_probability_is_the_model_at_their_silence_and_bucket(served) -> None:
    url, token, persons, world, as_of = served
    today = as_of.astimezone(UTC).date()
    histories = {
        pid: list(engagement_days(s, as_of)) for pid, s in world.persons.items() if not s.erased
    }
    model = fit(ReturnTimeCounts.of(person_gaps(d) for d in histories.values() if d), today)
    engaged = [p for p in persons if p["last_engagement_at"] is not None]
    assert engaged
    for p in engaged[:20]:
        body = get(url, token, f"/v1/churn/persons/{p['person_id']}").json()
        days: list[date] = histories[p["person_id"]]
        silence = (today - days[-1]).days
        gaps = [(b - a).days for a, b in pairwise(days)]
        expected = model.silent_probability(bucket_after(gaps), silence, W)
        assert body["silence_days"] == silence
        assert body["bucket"] == bucket_after(gaps).key
        assert body["probability"] == pytest.approx(expected, abs=1e-4)
        assert body["care"] == (expected >= 0.5 and silence < W)
    never = next((p for p in persons if p["last_engagement_at"] is None), None)
    if never is not None:
        assert (
            get(url, token, f"/v1/churn/persons/{never['person_id']}").json()["probability"] is None
        )
    assert get(url, token, "/v1/churn/persons/nobody").status_code == 404
    assert get(url, None, "/v1/churn/persons/nobody").status_code == 401
    early = (as_of - timedelta(days=400)).isoformat()
    assert get(url, token, "/v1/churn/calibration", as_of=early).status_code == 422


def test_the_calibration_route_is_the_backtest_of_the_stored_days(served) -> None:
    url, token, _, world, as_of = served
    body = get(url, token, "/v1/churn/calibration").json()
    histories = [
        (list(engagement_days(s, as_of)), "*") for s in world.persons.values() if not s.erased
    ]
    expected = backtest(histories, as_of.astimezone(UTC).date(), W)
    assert body["people"] == expected.people > 0
    assert body["silent_next"] == expected.silent_next
    assert [d["count"] for d in body["deciles"]] == [r.count for r in expected.deciles]
    assert [d["mean_prediction"] for d in body["deciles"]] == pytest.approx(
        [r.mean_prediction for r in expected.deciles], abs=1e-4
    )


def test_the_backtest_gauges_equal_the_calibration_route(served) -> None:
    url, token, _, _, _ = served
    body = get(url, token, "/v1/churn/calibration").json()
    text = httpx.get(f"{url}/metrics", timeout=30).text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("tenure_churn_")
    }
    assert samples["tenure_churn_backtest_people"] == body["people"]
    assert samples["tenure_churn_backtest_auc"] == pytest.approx(body["auc"], abs=1e-4)
    for n, decile in enumerate(body["deciles"], start=1):
        name = f'tenure_churn_calibration_observed_ratio{{decile="{n}"}}'
        assert samples[name] == pytest.approx(decile["observed_rate"], abs=1e-4)
