"""Erasure that holds (docs/design/erasure.md): after an erasure no table and no topic holds
any id of the person, everybody else is as the pure fold says, the aggregates add up, a
later event does not bring the person back and a replay reproduces the read models."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from kafka import KafkaAdminClient

from services.ingest.batch import ingest_batch
from tenure.domain.events import parse_event
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.privacy.boundary import pseudonymiser_for
from tenure.projection import erasure
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord, parse_records
from tenure.projection.replay import replay
from tenure.runtime.broker import LocalBroker
from tenure.runtime.process import ManagedProcess, free_port, port_open
from tenure.sdk import TenureProducer
from tenure.storage import archive
from tenure.storage.raw_states import DEVICES, read_all
from tenure.storage.read_models import (
    DEVICE_COLUMNS,
    PERSON_COLUMNS,
)
from tests.factories import make_event
from tests.integration.conftest import env_for
from tests.integration.pipeline import front_door
from tests.integration.projection_harness import (
    LATENESS,
    Population,
    Projection,
    post,
    read_topic,
    rows,
    the_fold,
    wait_archived,
)
from tests.integration.test_survival_live import assert_live_equals_scratch

pytestmark = pytest.mark.kafka


def occurrences_in_database(database_url: str, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, id) for every column of every table whose text holds an id."""
    found = []
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
            " FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')"
            " AND t.table_type = 'BASE TABLE'"
        ).fetchall()
        assert len(columns) > 100
        for schema, table, column, data_type in columns:
            text = (
                f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
            )
            for needle in needles:
                hit = conn.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE strpos({text}, %s) > 0',
                    (needle,),
                ).fetchone()
                if hit and hit[0]:
                    found.append((table, column, needle))
        # The archive's payload is deflated (tenure/storage/archive.py): scan it decoded.
        for envelope in archive.read_envelopes(conn):
            text = json.dumps(envelope, ensure_ascii=False)
            found.extend(("event_archive", "payload", n) for n in needles if n in text)
    return found


def occurrences_on_topics(bootstrap: str, needles: list[str]) -> list[tuple[str, str]]:
    """(topic, id) for every record (key, value, headers) on every topic that holds an id."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topics = sorted(admin.list_topics())
    admin.close()
    assert len(topics) >= 6
    found = []
    for topic in topics:
        for r in read_topic(bootstrap, topic, timeout_ms=1500):
            blob = b"\x00".join(
                [r.key or b"", r.value or b"", *(k.encode() + v for k, v in r.headers)]
            )
            found += [(topic, n) for n in needles if n.encode() in blob]
    return found


@pytest.fixture
def sdk_validator(broker: LocalBroker, database_url: str, scratch_dir: Path):
    port = free_port()
    validator = ManagedProcess(
        "sdk-validator",
        [
            sys.executable,
            "-m",
            "tenure.cli.app",
            "worker",
            "sdk-validator",
            "--metrics-port",
            str(port),
        ],
        scratch_dir / f"erasure-sdk-validator-{broker.name}.log",
        env=env_for(
            broker.bootstrap,
            database_url,
            TENURE_STATE_DIR=str(scratch_dir / f"erasure-{broker.name}"),
        ),
    )
    validator.start()
    try:
        validator.wait_ready(lambda: port_open("127.0.0.1", port), 60)
        yield
    finally:
        validator.stop()


@pytest.mark.apache_kafka_in_soak  # ~55 s per broker
def test_an_erased_person_is_nowhere_and_stays_erased(
    broker: LocalBroker, pool, database_url: str, sdk_validator: None
) -> None:
    people = Population()
    projection = Projection(pool, broker, people.source)
    with front_door(pool, broker.bootstrap, "erasure-test-reader") as (ingest, token, read):

        def person(pid: str) -> httpx.Response:
            return read(f"/v1/persons/{pid}")

        post(ingest, token, people.over_http())
        sdk = TenureProducer(broker.bootstrap)
        sdk.send_all(people.over_sdk())
        sdk.close()
        wait_archived(database_url, people.source, len(people.sent))
        assert projection.catch_up() == len(people.sent)
        assert person(people.alias).json()["person_id"] in people.erased_ids
        with pool.connection() as conn:  # transitions carry tokens: the API resolves them
            alias_token = pseudonymiser_for(conn).token(people.alias)
        assert person(alias_token).json()["person_id"] in people.erased_ids
        assert person(people.dave).status_code == 200
        with pool.connection() as conn, conn.transaction():
            # A dead letter that names the person raw (as an SDK record the validator
            # rejected would): the purge rewrites the dead-letter table too.
            raw = orjson.dumps({"data": {"person_id": people.alice, "alias_id": people.alias}})
            letter = DeadLetter(people.alias.encode(), raw, "schema", "test", "", "sdk/0/1")
            DeadLetterSink("sdk-validator").store(conn, [letter])
        sent_before = list(people.sent)

        # The erasure, then later events about the erased person (over both paths).
        post(ingest, token, [people.event("person.erasure_requested", 31, person_id=people.alice)])
        wait_archived(database_url, people.source, len(people.sent))
        projection.catch_up()
        post(
            ingest,
            token,
            [
                people.event(
                    "device.used",
                    32,
                    device_id=people.alice_device,
                    person_id=people.alice,
                    duration_s=60,
                ),
                people.event(
                    "payment.completed",
                    33,
                    order_id=f"o-late-{people.u}",
                    payer_id=people.alias,
                    items=[
                        {
                            "sku": "band",
                            "category": "accessory",
                            "amount_minor": 900,
                            "currency": "EUR",
                        }
                    ],
                ),
                people.event("feedback.submitted", 33, person_id=people.alice, channel="app"),
            ],
        )
        wait_archived(database_url, people.source, len(people.sent))
        projection.catch_up()

        for pid in [*people.erased_ids, alias_token]:
            assert person(pid).status_code == 404
        assert person(people.bob).status_code == 200
        device = read(f"/v1/devices/{people.alice_device}").json()
        assert device["user_id"] is None and device["payer_id"] == "~erased"
    projection.publisher.close()

    # 1. No id of the person in any column of any table, nor on any topic.
    assert occurrences_in_database(database_url, people.erased_ids) == []
    assert occurrences_on_topics(broker.bootstrap, people.erased_ids) == []
    # ... and no person id of anybody reached a topic Tenure writes (the SDK topic holds
    # what the SDK client wrote: Dave's and Erin's ids).
    everybody = [people.alice, people.alias, people.bob, people.carol, people.dave, people.erin]
    on_topics = occurrences_on_topics(broker.bootstrap, everybody)
    assert on_topics and {t for t, _ in on_topics} == {"tenure.sdk-events.v1"}

    # 2. Everybody else is what the pure fold of the events as sent says, as before.
    want_persons, want_devices = the_fold(people.sent)
    got_persons = rows(database_url, "persons", PERSON_COLUMNS)
    assert got_persons == want_persons
    assert rows(database_url, "devices", DEVICE_COLUMNS) == want_devices
    # ... which is what they were without the erasure, at the same instant.
    as_of = max(parse_event(e).at for e in people.sent) - LATENESS
    unerased, _ = the_fold(sent_before, as_of)
    assert got_persons == [r for r in unerased if r[0] not in people.erased_ids]

    # 3. The survival aggregates equal those counted afresh from the persons rows.
    assert assert_live_equals_scratch(database_url) == len(want_persons)

    # 4. A replay reproduces the read models, at the same instant. (The archiver read the
    # shared topics from their start: earlier tests' people are in the archive too, and their
    # events may be later; only this test's people are compared.)
    replay(database_url, as_of=as_of)
    mine = {r[0] for r in want_persons} | set(people.erased_ids)
    my_devices = {r[0] for r in want_devices}
    replayed = rows(database_url, "persons", PERSON_COLUMNS, as_of)  # the replay's instant
    assert [r for r in replayed if r[0] in mine] == got_persons
    assert [
        r for r in rows(database_url, "devices", DEVICE_COLUMNS) if r[0] in my_devices
    ] == want_devices
    assert occurrences_in_database(database_url, people.erased_ids) == []


def test_a_batch_resolved_before_another_worker_erased_the_person_stores_no_id(
    broker: LocalBroker, pool, database_url: str
) -> None:
    people = Population()
    publisher = EventPublisher(broker.bootstrap)
    first, second = (Projector(pool, publisher, allowed_lateness=LATENESS) for _ in range(2))

    def records(*events: dict) -> list[IncomingRecord]:
        return [IncomingRecord("t", 0, i, b"k", orjson.dumps(e)) for i, e in enumerate(events)]

    try:
        first.project(
            records(
                people.event(
                    "device.activated",
                    1,
                    device_id=people.alice_device,
                    person_id=people.alice,
                    product="w",
                )
            )
        )
        # ``first`` resolves a batch naming Alice; meanwhile ``second`` erases her.
        late_use = people.event(
            "device.used", 2, device_id=people.alice_device, person_id=people.alice
        )
        prepared = first.prepare(parse_records(records(late_use)))
        second.project(records(people.event("person.erasure_requested", 3, person_id=people.alice)))
        first.write(prepared)
        first.settle()
        second.settle()
    finally:
        publisher.close()
    assert occurrences_in_database(database_url, [people.alice]) == []
    with psycopg.connect(database_url) as conn:  # the late use is kept, under the token
        device = read_all(conn, DEVICES)[people.alice_device]
        token = pseudonymiser_for(conn).token(people.alice)
    assert [person for _, person in device.uses] == [token]
    assert {a.person_id for a in device.activations} == {token}


def test_an_id_linked_to_an_erased_person_later_is_erased_too(
    broker: LocalBroker, pool, database_url: str
) -> None:
    people = Population()
    newcomer = f"alice-app-{people.u}"
    publisher = EventPublisher(broker.bootstrap)
    projector = Projector(pool, publisher, allowed_lateness=LATENESS)
    events = [
        people.event("feedback.submitted", 1, person_id=people.alice, channel="app"),
        people.event("person.erasure_requested", 2, person_id=people.alice),
        people.event("identity.linked", 3, person_id=people.alice, alias_id=newcomer),
        people.event("feedback.submitted", 4, person_id=newcomer, channel="app"),
        people.event("feedback.submitted", 5, person_id=people.bob, channel="app"),
    ]
    try:
        for n, event in enumerate(events):  # one batch each, in order
            projector.project([IncomingRecord("t", 0, n, b"k", orjson.dumps(event))])
        projector.settle()
    finally:
        publisher.close()
    assert occurrences_in_database(database_url, [people.alice, newcomer]) == []
    want, _ = the_fold(events)  # the domain erases the newcomer with Alice
    assert [r[0] for r in want] == [people.bob]
    assert rows(database_url, "persons", PERSON_COLUMNS) == want


def test_a_purge_alone_leaves_no_live_row_for_the_tokens(
    broker: LocalBroker, pool, database_url: str
) -> None:
    """A crash after the purge and before its batch is applied leaves nobody visible."""
    people = Population()
    publisher = EventPublisher(broker.bootstrap)
    projector = Projector(pool, publisher, allowed_lateness=LATENESS)
    events = [
        people.event("feedback.submitted", 1, person_id=people.alice, channel="app"),
        people.event("identity.linked", 2, person_id=people.alice, alias_id=people.alias),
        people.event(
            "device.activated",
            3,
            device_id=people.alice_device,
            person_id=people.alias,
            product="w",
        ),
        people.event("feedback.submitted", 4, person_id=people.bob, channel="app"),
    ]
    try:
        projector.project(
            [IncomingRecord("t", 0, n, b"k", orjson.dumps(e)) for n, e in enumerate(events)]
        )
        with pool.connection() as conn:
            done = erasure.purge(conn, pseudonymiser_for(conn), {people.alice: people.start})
        assert sorted(done.tokens) == sorted(people.erased_ids) and done.devices == 1
        projector.settle()
    finally:
        publisher.close()
    assert occurrences_in_database(database_url, people.erased_ids) == []
    assert [r[0] for r in rows(database_url, "persons", PERSON_COLUMNS)] == [people.bob]


class VaultWatchingPublisher(EventPublisher):
    """A real publisher that, as each batch goes out, looks from another connection at
    whether the vault already knows every token the records carry (a consumer may read the
    records at once)."""

    def __init__(self, bootstrap: str, database_url: str) -> None:
        super().__init__(bootstrap)
        self.database_url = database_url
        self.unknown: list[str] = []
        self.tokens = 0

    def publish(self, records: Sequence[OutgoingRecord]) -> None:
        with psycopg.connect(self.database_url) as other:
            known = {r[0] for r in other.execute("SELECT pseudonym FROM person_pseudonyms")}
        for record in records:
            for token in re.findall(r"~p:[a-z2-7]+", record.value.decode()):
                self.tokens += 1
                if token not in known:
                    self.unknown.append(token)
        super().publish(records)


def test_the_vault_knows_every_token_before_its_record_is_published(
    broker: LocalBroker, pool, database_url: str
) -> None:
    publisher = VaultWatchingPublisher(broker.bootstrap, database_url)
    items: list[object] = [make_event("payment.completed", n=i) for i in range(5)]
    items += [make_event("referral.completed", n=i) for i in range(5)]
    try:
        result = ingest_batch(
            items,
            producer="vault-test",
            pool=pool,
            publisher=publisher,
            future_tolerance=timedelta(minutes=5),
        )
    finally:
        publisher.close()
    assert result.count("accepted") == 10
    assert publisher.tokens >= 20 and publisher.unknown == []
