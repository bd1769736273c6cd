"""The erasure scenario's people and an in-process projection of one source's records, with
the pure fold's rows to compare with: shared by the erasure, consent and persons-topic
tests."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
from kafka import KafkaConsumer, TopicPartition

from tenure.contract.topics import CANONICAL_TOPICS
from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.world import fold, views
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord
from tenure.projection.replay import aliases_by_person
from tenure.runtime.broker import LocalBroker
from tenure.storage.read_models import device_row, person_row, persons_as_of
from tests.factories import make_event
from tests.integration.pipeline import plain_row, read_model_rows

LATENESS = timedelta(hours=1)


def read_topic(bootstrap: str, topic: str, timeout_ms: int = 3000) -> list:
    """Every record on ``topic`` up to its end offsets as of the call.

    Stops as soon as every partition's position reaches the end offset it had when the read
    began (so a read costs what the topic holds, not an idle timeout); gives up after
    ``timeout_ms`` without a new record (a transaction marker at the end of a partition is
    never returned as a record, so such a partition ends by that timeout)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    records: list = []
    idle_until = time.monotonic() + timeout_ms / 1000
    while any(consumer.position(p) < ends[p] for p in parts):
        batches = consumer.poll(timeout_ms=200)
        for batch in batches.values():
            records.extend(batch)
        if batches:
            idle_until = time.monotonic() + timeout_ms / 1000
        elif time.monotonic() > idle_until:
            break
    consumer.close()
    return records


class Population:
    """A few people; Alice (to be erased) pays a gift to Bob, refers Carol, uses a device
    and has an alias; Dave and Erin send through the SDK."""

    def __init__(self) -> None:
        self.u = u = uuid.uuid4().hex[:8]
        self.source = f"urn:tenure:erasure-test:{u}"
        self.alice, self.alias = f"alice-{u}", f"alice-web-{u}"
        self.bob, self.carol, self.dave, self.erin = (
            f"{n}-{u}" for n in ("bob", "carol", "dave", "erin")
        )
        self.alice_device, self.bob_device, self.dave_device = (
            f"{n}-watch-{u}" for n in ("alice", "bob", "dave")
        )
        self.start = datetime.now(UTC) - timedelta(days=40)
        self.sent: list[dict] = []

    def event(self, kind: str, day: float, **data: object) -> dict:
        event = make_event(kind, source=self.source, at=self.start + timedelta(days=day), data=data)
        self.sent.append(event)
        return event

    def over_http(self) -> list[dict]:
        item = {"sku": "watch-1", "category": "hardware", "amount_minor": 19_900, "currency": "EUR"}
        return [
            self.event(
                "device.activated",
                1,
                device_id=self.alice_device,
                person_id=self.alice,
                product="watch",
            ),
            self.event(
                "payment.completed",
                1,
                order_id=f"o-a-{self.u}",
                payer_id=self.alice,
                items=[item | {"device_id": self.alice_device}],
            ),
            self.event(
                "device.used", 2, device_id=self.alice_device, person_id=self.alice, duration_s=60
            ),
            self.event("device.used", 3, device_id=self.alice_device, duration_s=30),
            self.event("identity.linked", 2, person_id=self.alice, alias_id=self.alias),
            self.event("feedback.submitted", 4, person_id=self.alias, channel="app", rating=4),
            self.event(
                "payment.completed",
                5,
                order_id=f"o-g-{self.u}",
                payer_id=self.alice,
                beneficiary_id=self.bob,
                items=[item | {"device_id": self.bob_device}],
            ),
            self.event(
                "device.activated",
                6,
                device_id=self.bob_device,
                person_id=self.bob,
                product="watch",
            ),
            self.event("device.used", 7, device_id=self.bob_device, duration_s=50),
            self.event("referral.completed", 8, referrer_id=self.alice, referee_id=self.carol),
            self.event(
                "payment.completed", 9, order_id=f"o-c-{self.u}", payer_id=self.carol, items=[item]
            ),
            self.event(
                "device.used", 30, device_id=self.alice_device, person_id=self.alice, duration_s=60
            ),
        ]

    def over_sdk(self) -> list[dict]:
        item = {"sku": "watch-1", "category": "hardware", "amount_minor": 19_900, "currency": "EUR"}
        return [
            self.event(
                "payment.completed",
                3,
                order_id=f"o-d-{self.u}",
                payer_id=self.dave,
                items=[item | {"device_id": self.dave_device}],
            ),
            self.event(
                "device.activated",
                4,
                device_id=self.dave_device,
                person_id=self.dave,
                product="watch",
            ),
            self.event(
                "device.used", 10, device_id=self.dave_device, person_id=self.dave, duration_s=40
            ),
            self.event("referral.completed", 11, referrer_id=self.dave, referee_id=self.erin),
            self.event("feedback.submitted", 12, person_id=self.erin, channel="app", rating=5),
        ]

    @property
    def erased_ids(self) -> list[str]:
        return [self.alice, self.alias]


def post(url: str, token: str, events: list[dict]) -> None:
    response = httpx.post(
        f"{url}/v1/events", json=events, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert all(r["status"] == "accepted" for r in response.json()["results"]), response.text


def archived(database_url: str, source: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM event_archive WHERE source = %s", (source,)
        ).fetchone()
    return int(row[0]) if row else 0


def wait_archived(database_url: str, source: str, n: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while archived(database_url, source) < n:
        assert time.monotonic() < deadline, f"{archived(database_url, source)} of {n} archived"
        time.sleep(0.2)


def _source_of(value: bytes | None) -> object:
    """The ``source`` of a record's envelope (``None`` for what is not one: other tests
    leave poison records on the shared broker's canonical topics)."""
    try:
        envelope = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return envelope.get("source") if isinstance(envelope, dict) else None


class Projection:
    """An in-process projector fed with the canonical topics' records of one source."""

    def __init__(self, pool, broker: LocalBroker, source: str) -> None:
        self.publisher = EventPublisher(broker.bootstrap)
        self.projector = Projector(
            pool, self.publisher, allowed_lateness=LATENESS, derive_budget_s=0.2
        )
        self.bootstrap, self.source, self.done = broker.bootstrap, source, set()

    def catch_up(self) -> int:
        fresh = []
        for topic in CANONICAL_TOPICS:
            for r in read_topic(self.bootstrap, topic, timeout_ms=1500):
                where = (r.topic, r.partition, r.offset)
                if where in self.done or _source_of(r.value) != self.source:
                    continue
                self.done.add(where)
                fresh.append(IncomingRecord(r.topic, r.partition, r.offset, r.key, r.value))
        self.projector.project(fresh)
        for _ in range(30):
            self.projector.settle(budget_s=5)
            if self.projector.backlog() == (0, 0):
                break
        return len(fresh)


def rows(
    database_url: str, table: str, columns: tuple[str, ...], as_of: datetime | None = None
) -> list[tuple]:
    if table == "persons":  # a row keeps its view until its schedule: read it at an instant
        if as_of is None:  # the projection's watermark
            return read_model_rows(database_url, table, columns)
        with psycopg.connect(database_url) as conn:
            return [plain_row(r) for r in persons_as_of(conn, as_of)]
    with psycopg.connect(database_url) as conn:
        found = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1").fetchall()
    return [plain_row(r) for r in found]


def the_fold(events: list[dict], as_of: datetime | None = None) -> tuple[list[tuple], list[tuple]]:
    """Persons and devices rows of the pure fold of the events as sent (plain ids)."""
    world = fold(parse_event(e) for e in events)
    as_of = as_of or max(parse_event(e).at for e in events) - LATENESS
    aliases = aliases_by_person(world)
    persons = sorted(
        plain_row(person_row(v, aliases.get(p, ()))) for p, v in views(world, as_of).items()
    )
    devices = sorted(device_row(device_view_of(s)) for s in world.devices.values())
    return persons, devices
