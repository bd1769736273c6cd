"""The query API over the read models rebuilt from an archive (Postgres only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.query.app import create_app
from tenure.domain.stage import Stage
from tenure.projection.replay import replay
from tenure.storage.summary_reads import read_snapshot
from tenure.storage.tokens import create_token
from tests.factories import scenario
from tests.integration.conftest import ServerThread
from tests.integration.pipeline import archive_events


@pytest.fixture
def query(pool, database_url: str):
    events = scenario(5, 20, source="urn:tenure:query-test", end=datetime.now(UTC))
    with pool.connection() as conn, conn.transaction():
        archive_events(conn, events)
        read = create_token(conn, "dashboard", scope="read")
        ingest = create_token(conn, "fleet", scope="ingest")
    replay(database_url, allowed_lateness=timedelta(0))
    with ServerThread(create_app(pool=pool)) as server:
        yield server.url, read, ingest


def get(url: str, token: str | None, path: str, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}{path}", headers=headers, params=params, timeout=10)


def test_persons_and_devices_by_id_and_alias(query) -> None:
    url, read, _ = query
    person = get(url, read, "/v1/persons/p5-0").json()
    assert person["person_id"] == "p5-0" and person["aliases"] == ["p5-0-web"]
    assert get(url, read, "/v1/persons/p5-0-web").json()["person_id"] == "p5-0"
    gift_payer = get(url, read, "/v1/persons/p5-2").json()
    assert gift_payer["segment"] == "customer_only" and gift_payer["is_sponsor"]
    assert get(url, read, "/v1/persons/p5-2-kid").json()["segment"] == "user_only"
    assert get(url, read, "/v1/persons/p5-3").status_code == 404  # erased
    device = get(url, read, "/v1/devices/d5-2").json()
    assert device["payer_id"] == "p5-2" and device["user_id"] == "p5-2-kid"
    assert device["is_sponsored"]
    assert get(url, read, "/v1/devices/nope").status_code == 404


def test_filtered_pages_cover_every_match_once(query) -> None:
    url, read, _ = query
    everyone = get(url, read, "/v1/persons", limit=1000).json()["persons"]
    seen, after = [], None
    while True:
        params = {"limit": 3} | ({"after": after} if after else {})
        page = get(url, read, "/v1/persons", **params).json()
        seen += [p["person_id"] for p in page["persons"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == [p["person_id"] for p in everyone] and len(seen) == len(set(seen))
    supers = get(url, read, "/v1/persons", super_user="true").json()["persons"]
    assert supers and all(p["is_super_user"] and p["level"] == "super" for p in supers)
    only = get(url, read, "/v1/persons", segment="user_only").json()["persons"]
    assert only and {p["segment"] for p in only} == {"user_only"}
    assert get(url, read, "/v1/persons", segment="bogus").status_code == 422


def test_auth(query) -> None:
    url, read, ingest = query
    assert get(url, None, "/v1/persons").status_code == 401
    assert get(url, "tnr_bad", "/v1/persons").status_code == 401
    assert get(url, ingest, "/v1/persons").status_code == 403
    assert get(url, read, "/v1/persons").status_code == 200
    assert httpx.get(f"{url}/openapi.json").json()["paths"]["/v1/persons"]


NUL = "must not contain the NUL character (U+0000)"


def test_nul_and_oversized_parameters_are_refused_with_422_not_500(query) -> None:
    url, read, _ = query
    for path, params, name in (
        ("/v1/persons/%00", {}, "person_id"),
        ("/v1/persons/p%00x", {}, "person_id"),
        ("/v1/devices/%00", {}, "device_id"),
        ("/v1/persons", {"after": "\x00"}, "after"),
        ("/v1/persons", {"tier": "gold\x00"}, "tier"),
    ):
        reply = get(url, read, path, **params)
        assert reply.status_code == 422, (path, params, reply.text)
        assert reply.json() == {"error": f"{name}: {NUL}"}
    for path, params in (
        ("/v1/persons/" + "p" * 257, {}),
        ("/v1/devices/" + "d" * 257, {}),
        ("/v1/persons", {"after": "p" * 257}),
        ("/v1/persons", {"tier": "t" * 257}),
        ("/v1/persons", {"limit": 10**30}),
        ("/v1/persons", {"limit": -1}),
        ("/v1/persons", {"super_user": "\x00"}),
    ):
        reply = get(url, read, path, **params)
        assert reply.status_code == 422, (path, params, reply.text)
        assert reply.json()["error"]
    # Within the bounds: found, or a plain 404.
    assert get(url, read, "/v1/persons/" + "p" * 256).status_code == 404
    assert get(url, read, "/v1/persons", tier="t" * 256).json() == {"persons": [], "next": None}


def test_refusals_are_documented_in_the_openapi_document(query) -> None:
    url, read, _ = query
    spec = get(url, read, "/openapi.json").json()
    one = spec["paths"]["/v1/persons/{person_id}"]["get"]
    assert {"401", "403", "404", "422"} <= set(one["responses"])
    error = one["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    (person_id,) = [p for p in one["parameters"] if p["name"] == "person_id"]
    assert person_id["schema"]["maxLength"] == 256
    assert person_id["schema"]["pattern"] == r"^[^\x00]*$"


def test_every_data_route_needs_a_read_token_and_says_so(query) -> None:
    url, read, ingest = query
    spec = get(url, read, "/openapi.json").json()
    data_routes = [p for p in spec["paths"] if p.startswith("/v1/")]
    assert len(data_routes) >= 8
    for path in data_routes:
        assert spec["paths"][path]["get"]["security"] == [{"bearerAuth": []}], path
        concrete = path.replace("{person_id}", "p5-0").replace("{device_id}", "d")
        assert get(url, None, concrete).status_code == 401, path
        wrong = get(url, ingest, concrete)
        assert wrong.status_code == 403 and "not 'read'" in wrong.json()["error"], path


def test_dashboard_summary_and_business_snapshot_count_the_read_model(query, pool) -> None:
    url, read, _ = query
    body = get(url, read, "/v1/dashboard/summary").json()
    with pool.connection() as conn:
        segments = dict(conn.execute("SELECT segment, count(*) FROM persons GROUP BY 1").fetchall())
        archived = conn.execute("SELECT max(seq) FROM event_archive").fetchone()
    assert {k: v for k, v in body["segments"].items() if v} == segments
    assert set(body["stages"]) == {s.value for s in Stage}
    assert body["persons"] == sum(segments.values()) == sum(body["stages"].values()) > 0
    assert archived is not None and body["pipeline"]["archived_events"] == archived[0]
    assert body["pipeline"]["last_replay"]["events"] > 0
    snapshot = read_snapshot(pool)
    assert sum(row[5] for row in snapshot.persons) == body["persons"]
    assert snapshot.checkpoint is not None and snapshot.checkpoint[1] > 0
