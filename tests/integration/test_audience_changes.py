"""Audience changes on ``tenure.audiences.v1``: one event id per membership change across a
restart, a crash before publishing and ``tenure replay``; consent and quiet-period
suppression as documented; an erased member exits keyed by its token and leaves no row."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from tenure.contract.topics import AUDIENCES
from tenure.domain.audience import AudienceDefinition, parse_audience
from tenure.eventlog.publisher import EventPublisher
from tenure.privacy.boundary import pseudonymiser_for
from tenure.projection import erasure
from tenure.projection.audiences import AudienceStage
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord
from tenure.projection.replay import replay
from tenure.runtime.broker import LocalBroker
from tests.factories import make_event
from tests.integration.pipeline import archive_events
from tests.integration.projection_harness import read_topic

pytestmark = pytest.mark.kafka

LATENESS = timedelta(hours=1)


class People:
    """Ann and Bob buy; Ann gives email consent later; Carol only uses a device."""

    def __init__(self) -> None:
        self.u = u = uuid.uuid4().hex[:8]
        self.source = f"urn:tenure:audience-test:{u}"
        self.ann, self.bob, self.carol = f"ann-{u}", f"bob-{u}", f"carol-{u}"
        self.start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)
        self.offset = 0
        self.sent: list[dict[str, Any]] = []
        self.audience = parse_audience(
            {
                "name": f"recent-buyers-{u}",
                "description": "bought at most 5 days ago, by email",
                "channel": "email",
                "quiet_days": 10,
                "filter": {"days_since_purchase": {"max": 5}},
            }
        )

    def event(self, kind: str, day: float, **data: object) -> dict[str, Any]:
        made = make_event(kind, source=self.source, at=self.start + timedelta(days=day), data=data)
        self.sent.append(made)
        return made

    def paid(self, person: str, day: float) -> dict[str, Any]:
        item = {"sku": "band", "category": "accessory", "amount_minor": 900, "currency": "EUR"}
        return self.event(
            "payment.completed", day, order_id=f"o-{person}-{day}", payer_id=person, items=[item]
        )

    def consent(self, person: str, day: float, granted: bool = True) -> dict[str, Any]:
        return self.event(
            "person.consent_changed", day, person_id=person, channel="email", granted=granted
        )

    def used(self, person: str, day: float) -> dict[str, Any]:
        return self.event(
            "device.used", day, device_id=f"w-{person}", person_id=person, duration_s=60
        )

    def records(self, events: list[dict[str, Any]]) -> list[IncomingRecord]:
        out = []
        for event in events:
            out.append(IncomingRecord("t", 0, self.offset, b"k", orjson.dumps(event)))
            self.offset += 1
        return out


def changes_on_topic(bootstrap: str, audience: str) -> list[tuple[str, dict[str, Any]]]:
    """(key, event) of every record of ``audience`` on the topic."""
    found = []
    for record in read_topic(bootstrap, AUDIENCES, timeout_ms=1500):
        event = orjson.loads(record.value)
        if event["data"]["audience"] == audience:
            found.append((record.key.decode(), event))
    return found


def projector(pool: Any, publisher: EventPublisher, audience: AudienceDefinition) -> Projector:
    return Projector(pool, publisher, allowed_lateness=LATENESS, audiences=lambda conn: [audience])


def members(database_url: str, audience: str) -> dict[str, str | None]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT person_id, suppressed FROM audience_members WHERE audience = %s", (audience,)
        ).fetchall()
    return {str(p): s for p, s in rows}


def test_one_id_per_change_across_restart_crash_and_replay_and_erasure_by_token(
    broker: LocalBroker, pool: Any, database_url: str
) -> None:
    people = People()
    name = people.audience.name
    publisher = EventPublisher(broker.bootstrap)
    with pool.connection() as conn:
        token = pseudonymiser_for(conn).token
    try:
        first = projector(pool, publisher, people.audience)
        # Day 0: both buy; only Bob consents. The watermark (day 1 - 1 h) sees both in.
        day_zero = [people.paid(people.ann, 0), people.paid(people.bob, 0),
                    people.consent(people.bob, 0), people.used(people.carol, 1)]  # fmt: skip
        first.project(people.records(day_zero))
        first.settle()
        assert members(database_url, name) == {people.ann: "no_consent", people.bob: None}
        # Day 2: Ann consents: her suppression lifts (a contact).
        first.project(people.records([people.consent(people.ann, 2), people.used(people.carol, 3)]))
        first.settle()
        assert members(database_url, name) == {people.ann: None, people.bob: None}

        # A crash after the stage committed, before publishing: time alone (Carol's use on
        # day 9 moves the watermark) moves Ann and Bob out; a stage pass commits the exits...
        first.apply(people.records([people.used(people.carol, 9)]))
        first.derive()
        stage = AudienceStage(lambda conn: [people.audience])
        with pool.connection() as conn:
            while stage.run_pass(conn, LATENESS).evaluated:
                pass
        assert members(database_url, name) == {}
        # ... and a restarted projector publishes them, with the ids the outbox holds.
        restarted = projector(pool, publisher, people.audience)
        restarted.settle()
        restarted.follow_audiences()
        with psycopg.connect(database_url) as conn:
            outbox = {
                str(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM audience_changes WHERE audience = %s", (name,)
                )
            }
        published = changes_on_topic(broker.bootstrap, name)
        ids = Counter(e["id"] for _, e in published)
        kinds = Counter((e["data"]["person_id"], e["data"]["change"]) for _, e in published)
        assert set(ids) == outbox
        ann, bob = token(people.ann), token(people.bob)
        assert kinds == {(ann, "entered"): 1, (ann, "suppression_changed"): 1,
                         (ann, "exited"): 1, (bob, "entered"): 1, (bob, "exited"): 1}  # fmt: skip
        assert all(key == e["subject"] == e["data"]["person_id"] for key, e in published)

        # Replay rebuilds persons from the archive: every row is re-stamped, re-evaluated,
        # and no membership changed, so no new change.
        with psycopg.connect(database_url) as conn:
            archive_events(conn, people.sent)
        replay(database_url, allowed_lateness=LATENESS)
        again = projector(pool, publisher, people.audience)
        assert again.follow_audiences() == 0
        assert Counter(e["id"] for _, e in changes_on_topic(broker.bootstrap, name)) == ids

        # Erasure of Ann, who already left: nothing by her id remains.
        with pool.connection() as conn:
            erasure.purge(conn, pseudonymiser_for(conn), {people.ann: people.start})
        again.settle()
        with psycopg.connect(database_url) as conn:
            for table in ("audience_members", "audience_exits", "audience_contacts",
                          "audience_due", "audience_changes"):  # fmt: skip
                held = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE person_id = %s", (people.ann,)
                ).fetchone()
                assert held == (0,), table
        final = changes_on_topic(broker.bootstrap, name)
        assert not any(people.ann.encode() in orjson.dumps(e) for _, e in final)
        assert not any(people.ann == key for key, _ in final)
    finally:
        publisher.close()


def test_an_erased_member_exits_keyed_by_its_token(
    broker: LocalBroker, pool: Any, database_url: str
) -> None:
    people = People()
    name = people.audience.name
    publisher = EventPublisher(broker.bootstrap)
    with pool.connection() as conn:
        token = pseudonymiser_for(conn).token
    try:
        live = projector(pool, publisher, people.audience)
        live.project(people.records([people.paid(people.ann, 0), people.consent(people.ann, 0),
                                     people.used(people.carol, 1)]))  # fmt: skip
        live.settle()
        assert members(database_url, name) == {people.ann: None}
        with pool.connection() as conn:
            erasure.purge(conn, pseudonymiser_for(conn), {people.ann: people.start})
        live.settle()
        assert members(database_url, name) == {}
        with psycopg.connect(database_url) as conn:
            for table in ("audience_members", "audience_exits", "audience_contacts"):
                held = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE person_id IN (%s, %s)",
                    (people.ann, token(people.ann)),
                ).fetchone()
                assert held == (0,), table
            for table in ("audience_changes", "audience_due", "audience_positions"):
                held = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE person_id = %s", (people.ann,)
                ).fetchone()
                assert held == (0,), table
        published = changes_on_topic(broker.bootstrap, name)
        assert [(k, e["data"]["change"]) for k, e in published] == [
            (token(people.ann), "entered"),
            (token(people.ann), "exited"),
        ]
        assert not any(people.ann.encode() in orjson.dumps(e) for _, e in published)
    finally:
        publisher.close()
