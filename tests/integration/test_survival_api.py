"""The survival API equals lifelines computed on the persons rows (to 1e-9).

Postgres only: a scenario is archived and replayed (which rebuilds the aggregates), the
query service runs for real, and lifelines (test-time oracle only) fits the durations we
read back from ``persons`` with the definitions of docs/metrics.md.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import httpx
import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times, restricted_mean_survival_time
from psycopg.rows import dict_row

from services.query.app import create_app
from tenure.projection.replay import replay
from tenure.storage.tokens import create_token
from tests.factories import scenario
from tests.integration.conftest import ServerThread
from tests.integration.pipeline import archive_events

W = 30
TOL = 1e-9


@pytest.fixture
def served(pool, database_url: str):
    events = scenario(7, 150, source="urn:tenure:survival-api-test", end=datetime.now(UTC))
    with pool.connection() as conn, conn.transaction():
        archive_events(conn, events)
        token = create_token(conn, "dashboard", scope="read")
    result = replay(database_url, allowed_lateness=timedelta(0))
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        persons = cur.execute("SELECT * FROM persons").fetchall()
    with ServerThread(create_app(pool=pool)) as server:
        yield server.url, token, persons, result.as_of


def get(url: str, token: str | None, path: str, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}{path}", headers=headers, params=params, timeout=30)


def day(at: datetime | None) -> date | None:
    return None if at is None else at.astimezone(UTC).date()


def member(p: dict, group: str) -> bool:
    if group == "all":
        return True
    dimension, value = group.split(":", 1)
    column = {"entry": "entry_path"}.get(dimension, dimension)
    if dimension == "product":
        return value in p["products"]
    return str(p[column]) == value


def tenure_data(persons: list[dict], group: str, as_of: date) -> tuple[list[int], list[bool]]:
    durations, observed = [], []
    for p in persons:
        if p["first_engagement_at"] is None or not member(p, group):
            continue
        last = day(p["last_engagement_at"])
        durations.append((last - day(p["first_engagement_at"])).days)
        observed.append((as_of - last).days >= W)
    return durations, observed


def milestone_data(
    persons: list[dict], kind: str, group: str, as_of: date
) -> tuple[list[int], list[bool]]:
    durations, observed = [], []
    for p in persons:
        if not member(p, group):
            continue
        paid, use = p["first_paid_order_at"], p["first_use_at"]
        if kind == "activation" and paid is not None and (use is None or paid <= use):
            start, event = day(paid), day(p["device_activation_at"])
        elif kind == "conversion" and p["entry_path"] == "non_paying_user":
            start, event = day(use), day(paid)
        elif kind == "repeat" and paid is not None:
            start, event = day(paid), day(p["second_paid_order_at"])
        else:
            continue
        if event is not None and event <= as_of:
            durations.append(max(0, (event - start).days))
            observed.append(True)
        else:
            durations.append((as_of - start).days)
            observed.append(False)
    return durations, observed


def fitted(durations: list[int], observed: list[bool]) -> KaplanMeierFitter:
    return KaplanMeierFitter().fit(np.array(durations, float), np.array(observed, bool))


def close(a: float | None, b: float) -> bool:
    if a is None:
        return math.isinf(b) or math.isnan(b)
    return abs(a - b) <= TOL


def check_curve(curve: list[dict], kmf: KaplanMeierFitter, value: str, flip: bool) -> None:
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    at_risk = kmf.event_table["at_risk"]
    assert [p["day"] for p in curve] == [int(t) for t in sf.index]
    for point, t in zip(curve, sf.index, strict=True):
        s, lo, hi = sf[t], ci.iloc[:, 0][t], ci.iloc[:, 1][t]
        if flip:
            s, lo, hi = 1 - s, 1 - hi, 1 - lo
        assert abs(point[value] - s) <= TOL
        assert abs(point["ci_low"] - lo) <= TOL and abs(point["ci_high"] - hi) <= TOL
        assert point["at_risk"] == int(at_risk[t])


def check_survival(url: str, token: str, persons: list[dict], when: date, **params: str) -> None:
    groups = params.get("groups", "all").split(",")
    reply = get(url, token, "/v1/tenure/survival", **params)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["window_days"], body["confidence"], body["ci_transform"]) == (W, 0.95, "log-log")
    data = [tenure_data(persons, g, when) for g in groups]
    for g, got, (durations, observed) in zip(groups, body["groups"], data, strict=True):
        assert got["group"] == g
        assert (got["n"], got["events"]) == (len(durations), sum(observed))
        assert got["n"] > 5 and 0 < got["events"] < got["n"]  # ties and censoring
        kmf = fitted(durations, observed)
        check_curve(got["curve"], kmf, "survival", flip=False)
        assert close(got["median_days"], kmf.median_survival_time_)
        ci = median_survival_times(kmf.confidence_interval_)
        assert close(got["median_ci"][0], float(ci.iloc[0, 0]))
        assert close(got["median_ci"][1], float(ci.iloc[0, 1]))
        assert close(got["rmst_days"], restricted_mean_survival_time(kmf, t=180))
    if len(groups) == 2:
        (da, oa), (db, ob) = data
        lr = logrank_test(da, db, oa, ob)
        assert body["logrank"]["groups"] == groups
        assert abs(body["logrank"]["statistic"] - lr.test_statistic) <= TOL
        assert abs(body["logrank"]["p_value"] - lr.p_value) <= TOL
    else:
        assert body["logrank"] is None


def test_survival_equals_lifelines_at_the_watermark_and_later(served) -> None:
    url, token, persons, as_of = served
    today = day(as_of)
    check_survival(url, token, persons, today, groups="entry:connected_buyer,entry:non_paying_user")
    check_survival(url, token, persons, today, groups="all")
    later = as_of + timedelta(days=25)  # people silent since then now count as churned
    check_survival(
        url, token, persons, day(later), groups="all,product:watch", as_of=later.isoformat()
    )


@pytest.mark.parametrize(
    ("kind", "groups", "window"),
    [
        ("activation", "all,entry:connected_buyer,entry:one_time_buyer", 14),
        ("conversion", "all", 90),
        ("repeat", "entry:connected_buyer,all", 90),
    ],
)
def test_milestones_equal_lifelines(served, kind: str, groups: str, window: int) -> None:
    url, token, persons, as_of = served
    reply = get(url, token, f"/v1/tenure/{kind}", groups=groups)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["window_days"] == window
    for g, got in zip(groups.split(","), body["groups"], strict=True):
        durations, observed = milestone_data(persons, kind, g, day(as_of))
        assert (got["group"], got["n"], got["count"]) == (g, len(durations), sum(observed))
        assert got["n"] > 0
        check_curve(got["curve"], fitted(durations, observed), "share", flip=True)
        eligible = sum(1 for d, o in zip(durations, observed, strict=True) if o or d >= window)
        reached = sum(1 for d, o in zip(durations, observed, strict=True) if o and d <= window)
        assert got["eligible"] == eligible
        assert got["rate"] == (reached / eligible if eligible else None)


def test_retention_matches_the_persons_rows(served) -> None:
    url, token, persons, as_of = served
    body = get(url, token, "/v1/tenure/retention", groups="all,entry:connected_buyer").json()
    for got in body["groups"]:
        mine = [p for p in persons if p["cohort_week"] is not None and member(p, got["group"])]
        cohorts = sorted({p["cohort_week"] for p in mine})
        assert [c["cohort"] for c in got["cohorts"]] == [c.isoformat() for c in cohorts]
        for row in got["cohorts"]:
            people = [p for p in mine if p["cohort_week"].isoformat() == row["cohort"]]
            weeks = (day(as_of) - date.fromisoformat(row["cohort"])).days // 7 + 1
            assert row["size"] == len(people)
            assert row["on_count"] == [
                sum(k in p["engaged_weeks"] for p in people) for k in range(weeks)
            ]
            assert row["on_or_after_count"] == [
                sum(max(p["engaged_weeks"]) >= k for p in people) for k in range(weeks)
            ]
            assert row["on"][0] == 1.0
    one = get(
        url,
        token,
        "/v1/tenure/retention",
        groups=f"cohort:{body['groups'][0]['cohorts'][0]['cohort']}",
    )
    assert one.json()["groups"][0]["cohorts"] == body["groups"][0]["cohorts"][:1]


def test_bad_requests_and_auth(served) -> None:
    url, token, _, as_of = served
    assert get(url, None, "/v1/tenure/survival").status_code == 401
    for params in (
        {"groups": "colour:red"},
        {"groups": "entry:gift"},
        {"as_of": (as_of - timedelta(days=1)).isoformat()},
        {"as_of": "2026-01-01T00:00:00"},
        {"as_of": "yesterday"},
    ):
        reply = get(url, token, "/v1/tenure/survival", **params)
        assert reply.status_code == 422, params
        assert reply.json()["error"]
    spec = get(url, token, "/openapi.json").json()
    for path in ("survival", "retention", "activation", "conversion", "repeat"):
        assert spec["paths"][f"/v1/tenure/{path}"]["get"]["description"]
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'tenure_survival_people{group="all"}' in metrics
    assert 'tenure_activation_rate{group="all"}' in metrics
    # the median gauge is in seconds (Prometheus' base unit): the API's median days * 86400
    (everyone,) = get(url, token, "/v1/tenure/survival", groups="all").json()["groups"]
    assert everyone["median_days"] is not None
    gauge = 'tenure_survival_median_seconds{group="all"} '
    (line,) = [line for line in metrics.splitlines() if line.startswith(gauge)]
    assert float(line.removeprefix(gauge)) == everyone["median_days"] * 86400


def test_grafana_views_agree_with_the_api(served, pool) -> None:
    url, token, _, _ = served
    body = get(url, token, "/v1/tenure/survival", groups="all,entry:connected_buyer").json()
    with pool.connection() as conn:
        for got in body["groups"]:
            rows = conn.execute(
                "SELECT duration_day, events, censored FROM survival_counts"
                " WHERE group_key = %s ORDER BY 1",
                (got["group"],),
            ).fetchall()
            assert sum(r[1] for r in rows) == got["events"]
            assert sum(r[2] for r in rows) == got["censored"]
            at_risk = {p["day"]: p["at_risk"] for p in got["curve"]}
            for d, _, _ in rows:
                assert at_risk[d] == sum(r[1] + r[2] for r in rows if r[0] >= d)
        now = conn.execute("SELECT * FROM survival_tenure_now ORDER BY 1, 2").fetchall()
        view = conn.execute("SELECT * FROM survival_counts ORDER BY 1, 2").fetchall()
        assert now == view and len(now) > 50
        matrix = conn.execute(
            "SELECT cohort_week, week, size, on_count, on_or_after_count FROM retention_matrix"
            " WHERE group_key = 'all' ORDER BY 1, 2"
        ).fetchall()
        counts = conn.execute(
            "SELECT kind, n, count FROM milestone_counts WHERE group_key = 'all' ORDER BY 1"
        ).fetchall()
    retention = get(url, token, "/v1/tenure/retention").json()["groups"][0]["cohorts"]
    assert matrix == [
        (date.fromisoformat(c["cohort"]), k, c["size"], c["on_count"][k], c["on_or_after_count"][k])
        for c in retention
        for k in range(len(c["on"]))
    ]
    for kind, n, count in counts:
        got = get(url, token, f"/v1/tenure/{kind}", groups="all").json()["groups"][0]
        assert (n, count) == (got["n"], got["count"])


def test_group_count_is_capped(served) -> None:
    url, token, _, _ = served
    selectors = [
        "all",
        *(f"segment:{s}" for s in ("customer_and_user", "customer_only", "user_only", "prospect")),
        *(f"stage:{s}" for s in ("none", "new", "active", "at_risk", "churned", "resurrected")),
        *(f"level:{v}" for v in ("none", "micro", "weak", "strong", "super")),
        *(f"entry:{p}" for p in ("connected_buyer", "one_time_buyer", "non_paying_user")),
        "product:a",
        "product:b",
    ]
    assert len(selectors) == 21
    twenty = get(url, token, "/v1/tenure/survival", groups=",".join(selectors[:20]))
    assert twenty.status_code == 200 and len(twenty.json()["groups"]) == 20
    for path in ("survival", "retention", "activation", "conversion", "repeat"):
        reply = get(url, token, f"/v1/tenure/{path}", groups=",".join(selectors))
        assert reply.status_code == 422, reply.text
        assert reply.json() == {"error": "groups: 21 group selectors; at most 20 per request"}
    # 8,000 selectors do not fit in a URL; 2,000 do (the 8,000 of issue 11: tests/unit/services).
    many = ",".join(f"product:p{i}" for i in range(2000))
    reply = get(url, token, "/v1/tenure/survival", groups=many)
    assert reply.status_code == 422, reply.text
    assert reply.json() == {"error": "groups: String should have at most 4096 characters"}
    short = ",".join(f"product:{i}" for i in range(300))
    reply = get(url, token, "/v1/tenure/survival", groups=short)
    assert reply.json() == {"error": "groups: 300 group selectors; at most 20 per request"}


def test_unusable_as_of_and_nul_parameters_are_422_not_500(served) -> None:
    url, token, _, as_of = served
    for params in (
        {"as_of": "0001-01-01T00:30:00+01:00"},
        {"as_of": "9999-12-31T23:00:00-05:00"},
        {"as_of": "9999-12-31T00:00:00Z"},
        {"as_of": (as_of + timedelta(days=3651)).isoformat()},
        {"as_of": "2026-01-01T00:00:00Z\x00"},
        {"groups": "product:\x00"},
        {"groups": "all,tier:\x00"},
    ):
        for path in ("survival", "retention", "activation", "conversion", "repeat"):
            reply = get(url, token, f"/v1/tenure/{path}", **params)
            assert reply.status_code == 422, (path, params, reply.text)
            assert reply.json()["error"], (path, params)
    for horizon in (10**30, -1, 0, 3651):
        reply = get(url, token, "/v1/tenure/survival", horizon_days=horizon)
        assert reply.status_code == 422 and reply.json()["error"].startswith("horizon_days: ")
    last = (as_of + timedelta(days=3650)).isoformat()
    assert get(url, token, "/v1/tenure/retention", as_of=last).status_code == 200
