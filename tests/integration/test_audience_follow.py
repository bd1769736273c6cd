"""``tenure audiences follow`` end to end on a real broker: the changes the projector's
audience stage publishes on ``tenure.audiences.v1`` are read back, one CloudEvent per JSON
line, the ids those of the outbox; in a consumer group a second follower goes on where the
first stopped (nothing repeated, nothing lost)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest

from tenure.entrypoints.audience_follow import follow
from tenure.eventlog.publisher import EventPublisher
from tenure.privacy.boundary import pseudonymiser_for
from tenure.runtime.broker import LocalBroker
from tests.integration.conftest import env_for
from tests.integration.test_audience_changes import People, projector

pytestmark = pytest.mark.kafka


def outbox_ids(database_url: str, audience: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event_id FROM audience_changes WHERE audience = %s", (audience,)
        ).fetchall()
    return {str(r[0]) for r in rows}


def published(pool: Any, broker: LocalBroker, people: People) -> None:
    """Ann and Bob buy (Bob consents), Ann consents two days later: three changes."""
    publisher = EventPublisher(broker.bootstrap)
    try:
        live = projector(pool, publisher, people.audience)
        day_zero = [people.paid(people.ann, 0), people.paid(people.bob, 0),
                    people.consent(people.bob, 0), people.used(people.carol, 1)]  # fmt: skip
        live.project(people.records(day_zero))
        live.settle()
        live.project(people.records([people.consent(people.ann, 2), people.used(people.carol, 3)]))
        live.settle()
    finally:
        publisher.close()


def test_follow_reads_back_what_the_audience_stage_published(
    broker: LocalBroker, pool: Any, database_url: str
) -> None:
    people = People()
    name = people.audience.name
    published(pool, broker, people)
    with pool.connection() as conn:
        token = pseudonymiser_for(conn).token

    out = io.StringIO()
    followed = follow(broker.bootstrap, out, audience=name, idle_timeout_s=2.0)

    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert followed.lines == len(events) == 3
    assert {e["id"] for e in events} == outbox_ids(database_url, name)
    ann, bob = token(people.ann), token(people.bob)
    seen = sorted((e["data"]["person_id"], e["type"], e["data"]["suppressed"]) for e in events)
    assert seen == sorted([
        (ann, "tenure.audience.entered", "no_consent"),
        (bob, "tenure.audience.entered", None),
        (ann, "tenure.audience.suppression_changed", None),
    ])  # fmt: skip
    assert all(e["subject"] == e["data"]["person_id"] for e in events)
    # One person's changes arrive in order (keyed by the token: one partition).
    assert [e["type"] for e in events if e["subject"] == ann] == [
        "tenure.audience.entered",
        "tenure.audience.suppression_changed",
    ]


def test_followers_in_a_group_go_on_where_the_last_stopped(
    broker: LocalBroker, pool: Any, database_url: str
) -> None:
    people = People()
    name = people.audience.name
    published(pool, broker, people)
    group = f"crm-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "tenure.cli.app", "audiences", "follow", name,
               "--group", group, "--idle-timeout", "3"]  # fmt: skip
    env = env_for(broker.bootstrap, database_url)

    first = subprocess.run([*command, "--max", "1"], env=env, capture_output=True, timeout=120)
    rest = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert first.returncode == rest.returncode == 0, (first.stderr, rest.stderr)

    lines = [json.loads(x) for x in (first.stdout + rest.stdout).decode().splitlines()]
    assert len(first.stdout.decode().splitlines()) == 1
    assert sorted(e["id"] for e in lines) == sorted(outbox_ids(database_url, name))
    assert all(e["data"]["audience"] == name for e in lines)
