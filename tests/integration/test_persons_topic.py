"""The projector publishes each changed person to the compacted ``tenure.persons.v1``, keyed
by token, after the commit; removals and erasures as tombstones; no person id on the topic."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
import pytest

from tenure.contract.topics import PERSONS
from tenure.eventlog.publisher import EventPublisher
from tenure.privacy.boundary import pseudonymiser_for
from tenure.projection import erasure
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord
from tenure.runtime.broker import LocalBroker
from tests.integration.projection_harness import LATENESS, Population, read_topic

pytestmark = pytest.mark.kafka


def latest(bootstrap: str, keys: set[str]) -> tuple[dict[str, Any], list[bytes]]:
    """The last value per wanted key on the topic (``None``: a tombstone), and every value."""
    found: dict[str, Any] = {}
    values: list[bytes] = []
    for record in read_topic(bootstrap, PERSONS, timeout_ms=1500):
        key = record.key.decode()
        if key in keys:
            found[key] = None if record.value is None else orjson.loads(record.value)
            values.append(record.value or b"")
    return found, values


def test_changed_persons_and_tombstones_by_token(
    broker: LocalBroker, pool, database_url: str
) -> None:
    people = Population()
    publisher = EventPublisher(broker.bootstrap)
    projector = Projector(pool, publisher, allowed_lateness=LATENESS)
    events = [
        people.event("feedback.submitted", 1, person_id=people.alias, channel="app"),
        people.event("feedback.submitted", 2, person_id=people.alice, channel="app"),
        people.event("feedback.submitted", 3, person_id=people.bob, channel="app"),
        people.event("identity.linked", 4, person_id=people.alice, alias_id=people.alias),
    ]
    with pool.connection() as conn:
        token = pseudonymiser_for(conn).token
    tokens = {token(p): p for p in (people.alice, people.alias, people.bob)}
    try:
        for n, event in enumerate(events):  # one batch each: the alias is a person first
            projector.project([IncomingRecord("t", 0, n, b"k", orjson.dumps(event))])
        projector.settle()
        before, _ = latest(broker.bootstrap, set(tokens))
        with pool.connection() as conn:
            erasure.purge(conn, pseudonymiser_for(conn), {people.alice: people.start})
        projector.settle()
        projector.publish_persons()
    finally:
        publisher.close()
    with psycopg.connect(database_url) as conn:
        bob = conn.execute(
            "SELECT segment, stage, tenure_days FROM persons WHERE person_id = %s", (people.bob,)
        ).fetchone()
    assert before[token(people.alias)] is None  # merged into Alice: removed
    alice = before[token(people.alice)]
    assert alice["person_id"] == token(people.alice)
    assert alice["aliases"] == [token(people.alias)]
    after, values = latest(broker.bootstrap, set(tokens))
    assert after[token(people.alice)] is None  # erased: a tombstone
    assert after[token(people.alias)] is None
    shown = after[token(people.bob)]
    assert (shown["segment"], shown["stage"], shown["tenure_days"]) == bob
    assert not any(p.encode() in v for v in values for p in tokens.values())


def test_the_persons_topic_is_created_compacted(broker: LocalBroker) -> None:
    if broker.name != "apache-kafka":
        pytest.skip("the embedded broker keeps no topic configs (FACTS.md)")
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:  # the session's topics came from ensure_topics, as `tenure topics create` does
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, PERSONS)])
    finally:
        admin.close()
    # {resource type: {name: {config key: {config data}}}} (kafka-python 3.x)
    [by_name] = answer.values()
    policy = by_name[PERSONS]["cleanup.policy"]
    assert "compact" in str(policy), policy
