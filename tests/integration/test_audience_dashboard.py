"""The dashboard's audiences panel data (``GET /v1/dashboard/summary``): every current
audience's size (contactable, suppressed by reason) and the daily entries, exits and
suppression changes, as the projector's audience stage wrote them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from services.query.app import create_app
from tenure.eventlog.publisher import EventPublisher
from tenure.runtime.broker import LocalBroker
from tenure.storage import audience_definitions
from tenure.storage.tokens import create_token
from tests.integration.conftest import ServerThread
from tests.integration.test_audience_changes import People, projector

pytestmark = pytest.mark.kafka


def summary(pool: ConnectionPool) -> dict[str, Any]:
    with pool.connection() as conn:
        read = create_token(conn, "dashboard", scope="read")
    with ServerThread(create_app(pool=pool)) as server:
        reply = httpx.get(
            f"{server.url}/v1/dashboard/summary",
            headers={"Authorization": f"Bearer {read}"},
            timeout=10,
        )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_summary_has_audience_sizes_and_daily_flows(
    broker: LocalBroker, pool: ConnectionPool, database_url: str
) -> None:
    people = People()
    name = people.audience.name
    with pool.connection() as conn:
        audience_definitions.save(conn, people.audience.to_document())
    publisher = EventPublisher(broker.bootstrap)
    try:
        live = projector(pool, publisher, people.audience)
        # Day 0: Ann and Bob buy, only Bob consents: Ann suppressed (no consent), Bob not.
        day_zero = [people.paid(people.ann, 0), people.paid(people.bob, 0),
                    people.consent(people.bob, 0), people.used(people.carol, 1)]  # fmt: skip
        live.project(people.records(day_zero))
        live.settle()
        body = summary(pool)
        sizes = {a["name"]: a for a in body["audiences"]}
        assert sizes[name] == {
            "name": name, "channel": "email", "members": 2, "contactable": 1,
            "suppressed": {"erased": 0, "no_consent": 1, "quiet_period": 0},
        }  # fmt: skip
        # The shipped audiences are listed too, empty.
        assert sizes["win-back"]["members"] == 0 and len(sizes) == 6

        # Day 2: Ann consents (a suppression change); day 9: both left (bought > 5 days ago).
        live.project(people.records([people.consent(people.ann, 2), people.used(people.carol, 3)]))
        live.settle()
        live.project(people.records([people.used(people.carol, 9)]))
        live.settle()
    finally:
        publisher.close()

    body = summary(pool)
    assert {a["name"]: a["members"] for a in body["audiences"]}[name] == 0
    flows = [f for f in body["audience_flows"] if f["audience"] == name]
    totals = Counter[str]()
    for flow in flows:
        totals.update({k: flow[k] for k in ("entered", "exited", "suppression_changed")})
    assert totals == {"entered": 2, "exited": 2, "suppression_changed": 1}
    with psycopg.connect(database_url) as conn:
        days = conn.execute(
            "SELECT DISTINCT (at AT TIME ZONE 'UTC')::date::text FROM audience_changes"
            " WHERE audience = %s ORDER BY 1",
            (name,),
        ).fetchall()
    assert [f["day"] for f in flows] == [d for (d,) in days]
