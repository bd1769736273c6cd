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
        assert body["care"] == (round(expected, 4) >= 0.5 and silence < W)
    never = next((p for p in persons if p["last_engagement_at"] is None), None)
    if never is not None:
        assert (
            get(url, token, f"/v1/churn/persons/{never['person_id']}").json()["probability"] is None
        )
    assert get(url, token, "/v1/churn/persons/nobody").status_code == 404
    assert get(url, None, "/v1/churn/persons/nobody").status_code == 401
    early = (as_of - timedelta(days=400)).isoformat()
    assert get(url, token, "/v1/churn/calibration", as_of=early).status_code == 422


def pure_risks(world, as_of: datetime) -> dict[str, float | None]:
    """Everyone's churn risk from the pure fold: the model fitted to the fold's population."""
    today = as_of.astimezone(UTC).date()
    histories = {
        pid: list(engagement_days(s, as_of)) for pid, s in world.persons.items() if not s.erased
    }
    model = fit(ReturnTimeCounts.of(person_gaps(d) for d in histories.values() if d), today)
    risks: dict[str, float | None] = {}
    for pid, days in histories.items():
        if not days:
            risks[pid] = None
            continue
        gaps = [(b - a).days for a, b in pairwise(days)]
        risks[pid] = round(
            model.silent_probability(bucket_after(gaps), (today - days[-1]).days, W), 4
        )
    return risks


def all_pages(url: str, token: str, **params: object) -> list[dict]:
    found: list[dict] = []
    after = None
    while True:
        extra = {} if after is None else {"after": after}
        body = get(url, token, "/v1/persons", limit=37, **params, **extra).json()
        found += body["persons"]
        if body["next"] is None:
            return found
        after = body["next"]


def test_the_persons_churn_risk_is_the_churn_probability(served) -> None:
    """``/v1/persons/{id}``, the persons list and ``/v1/churn/persons/{id}`` answer the same
    probability, which is the pure model fitted to the pure fold's population at that as_of."""
    url, token, persons, world, as_of = served
    expected = pure_risks(world, as_of)
    listed = {p["person_id"]: p for p in all_pages(url, token)}
    assert set(listed) == {p["person_id"] for p in persons}
    engaged = [p["person_id"] for p in persons if p["last_engagement_at"] is not None]
    assert len(engaged) > 20
    assert len({expected[pid] for pid in engaged}) >= 5  # not one value for everyone
    for pid in engaged[:25]:
        one = get(url, token, f"/v1/persons/{pid}").json()
        churn = get(url, token, f"/v1/churn/persons/{pid}").json()
        assert one["churn_risk"] == churn["probability"] == listed[pid]["churn_risk"]
        assert one["churn_risk"] == pytest.approx(expected[pid], abs=1e-9)
        inputs = one["churn_inputs"]
        assert inputs == listed[pid]["churn_inputs"]
        assert inputs["as_of"] == as_of.astimezone(UTC).date().isoformat()
        assert inputs["window_days"] == W
        assert inputs["silence_days"] == churn["silence_days"]
        assert inputs["bucket"] == churn["bucket"]
        assert (inputs["curve"], inputs["gaps_at_risk"]) == (churn["curve"], churn["gaps_at_risk"])
    for pid, person in listed.items():
        assert person["churn_risk"] == pytest.approx(expected[pid], abs=1e-9)
    never = [pid for pid, p in listed.items() if p["last_engagement_at"] is None]
    for pid in never:
        assert listed[pid]["churn_risk"] is None
        assert listed[pid]["churn_inputs"]["bucket"] is None


def test_the_list_filters_by_churn_risk_exactly(served) -> None:
    """``min_churn_risk`` returns exactly the persons whose probability reaches it (the
    per-bucket cutoffs in SQL against the model evaluated per person), page after page."""
    url, token, _, world, as_of = served
    expected = pure_risks(world, as_of)
    values = sorted({r for r in expected.values() if r is not None})
    assert len(values) >= 5
    thresholds = [0.0, 0.5, values[len(values) // 2], values[-1], 1.0]
    for threshold in thresholds:
        found = all_pages(url, token, min_churn_risk=threshold)
        wanted = {pid for pid, r in expected.items() if r is not None and r >= threshold}
        assert {p["person_id"] for p in found} == wanted, threshold
        assert all(p["churn_risk"] >= threshold for p in found)
    assert all_pages(url, token, min_churn_risk=0.5) != []  # the care list is not empty
    both = all_pages(url, token, min_churn_risk=0.5, stage="at_risk")
    at_risk = all_pages(url, token, stage="at_risk")
    assert {p["person_id"] for p in both} == {
        p["person_id"] for p in at_risk if p["churn_risk"] is not None and p["churn_risk"] >= 0.5
    }
    assert get(url, token, "/v1/persons", min_churn_risk=1.5).status_code == 422
    assert get(url, token, "/v1/persons", min_churn_risk=-0.1).status_code == 422


def test_before_the_aggregates_have_an_as_of_rows_are_read_at_their_own(
    served, database_url: str
) -> None:
    """No aggregate as-of yet: a person at their row's as-of (as /v1/churn/persons), the
    list at the latest row's."""
    url, token, persons, _, _ = served
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE survival_state SET as_of = NULL")
        conn.execute("UPDATE persons SET as_of = as_of - interval '3 days' WHERE person_id = %s",
                     (persons[0]["person_id"],))  # fmt: skip
        conn.commit()
        latest = conn.execute("SELECT max(as_of) FROM persons").fetchone()[0]
        own = conn.execute(
            "SELECT as_of FROM persons WHERE person_id = %s", (persons[0]["person_id"],)
        ).fetchone()[0]
    one = get(url, token, f"/v1/persons/{persons[0]['person_id']}").json()
    churn = get(url, token, f"/v1/churn/persons/{persons[0]['person_id']}").json()
    assert one["churn_inputs"]["as_of"] == own.astimezone(UTC).date().isoformat()
    assert one["churn_risk"] == churn["probability"]
    listed = all_pages(url, token)
    assert {p["churn_inputs"]["as_of"] for p in listed} == {
        latest.astimezone(UTC).date().isoformat()
    }


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
    care = [
        p
        for p in all_pages(url, token, min_churn_risk=0.5)
        if p["churn_inputs"]["silence_days"] < W
    ]
    assert care  # the scenario has people to care for
    assert samples["tenure_churn_care_persons"] == len(care)
