"""The live projection (apply + derive stages in Postgres) equals the pure fold and replay."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.transitions import Transition, transition_id
from tenure.domain.world import fold, views
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord
from tenure.projection.replay import aliases_by_person
from tenure.runtime.broker import LocalBroker
from tenure.storage import transitions_outbox
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS, device_row, person_row
from tenure.storage.summary_reads import pipeline_state
from tests.factories import scenario
from tests.integration.pipeline import (
    drain,
    plain_row,
    read_model_rows,
    topic_sender,
    wait_for_the_fold,
)

pytestmark = pytest.mark.kafka

LATENESS = timedelta(hours=1)


def expected(events: list[dict]) -> tuple[list[tuple], list[tuple]]:
    world = fold(parse_event(e) for e in events)
    as_of = max(parse_event(e).at for e in events) - LATENESS
    aliases = aliases_by_person(world)
    persons = sorted(person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items())
    devices = sorted(device_row(device_view_of(s)) for s in world.devices.values())
    norm = [plain_row(r) for r in persons]
    return norm, devices


def records(events: list[dict], rng: random.Random) -> list[IncomingRecord]:
    out = [
        IncomingRecord("t", rng.randrange(4), i, b"k", orjson.dumps(e))
        for i, e in enumerate(events)
    ]
    return out


def test_live_projection_equals_the_fold_whatever_the_delivery(
    broker: LocalBroker, pool, database_url: str
) -> None:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(21, 30, source="urn:tenure:projection-test", end=end)
    rng = random.Random(5)
    deliveries = events + rng.sample(events, 60)
    rng.shuffle(deliveries)
    publisher = EventPublisher(broker.bootstrap)
    projector = Projector(pool, publisher, allowed_lateness=LATENESS, derive_budget_s=0.05)
    try:
        recs = records(deliveries, rng)
        i = 0
        while i < len(recs):
            size = rng.randint(1, 80)
            projector.project(recs[i : i + size])
            i += size
        drain(projector)
    finally:
        publisher.close()
    want_persons, want_devices = expected(events)
    assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == want_persons
    assert read_model_rows(database_url, "devices", DEVICE_COLUMNS) == want_devices
    with psycopg.connect(database_url) as conn:
        pending = pipeline_state(conn).transitions_unpublished
        kinds = dict(
            conn.execute(
                "SELECT kind, count(*) FROM lifecycle_transitions GROUP BY kind"
            ).fetchall()
        )
    assert pending == 0
    assert {"segment", "stage", "level", "erased"} <= set(kinds)
    assert projector.totals.applied == len(deliveries)


def test_two_projectors_on_one_database_converge_to_the_fold(
    broker: LocalBroker, pool, database_url: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(22, 30, source="urn:tenure:projection-test-2", end=end)
    rng = random.Random(9)
    deliveries = events + rng.sample(events, 30)
    rng.shuffle(deliveries)
    publisher = EventPublisher(broker.bootstrap)
    workers = [
        Projector(pool, publisher, allowed_lateness=LATENESS, derive_budget_s=0.05)
        for _ in range(2)
    ]
    halves = [records(deliveries[0::2], rng), records(deliveries[1::2], rng)]

    def run(n: int) -> None:
        recs = halves[n]
        for i in range(0, len(recs), 25):
            workers[n].project(recs[i : i + 25])

    try:
        with ThreadPoolExecutor(max_workers=2) as threads:
            list(threads.map(run, (0, 1)))
        drain(workers[0])
    finally:
        publisher.close()
    want_persons, want_devices = expected(events)
    assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == want_persons
    assert read_model_rows(database_url, "devices", DEVICE_COLUMNS) == want_devices


def _projector_process(broker: LocalBroker, database_url: str, scratch, name: str):
    import sys

    from tenure.runtime.process import ManagedProcess, free_port, port_open
    from tests.integration.conftest import env_for

    port = free_port()
    proc = ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "tenure.cli.app",
            "worker",
            "projector",
            "--metrics-port",
            str(port),
        ],
        scratch / f"{name}.log",
        env=env_for(
            broker.bootstrap,
            database_url,
            TENURE_STATE_DIR=str(scratch / name),
            TENURE_ALLOWED_LATENESS_S="3600",
            TENURE_LOG_LEVEL="WARNING",
        ),
    )
    proc.start()
    proc.wait_ready(lambda: port_open("127.0.0.1", port), 60)
    return proc


@pytest.mark.soak  # a fault run (`make test-faults`); the fault matrix kills it under `tenure up`
def test_projector_worker_killed_mid_stream_ends_equal_to_the_fold(
    broker: LocalBroker, pool, database_url: str, scratch_dir, unique_source: str
) -> None:
    """Through Kafka and the worker process: SIGKILL, restart, same final state."""
    import time

    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(23, 40, source=unique_source, end=end)
    rng = random.Random(13)
    deliveries = events + rng.sample(events, 40)
    rng.shuffle(deliveries)
    publisher, send = topic_sender(broker)
    half = len(deliveries) // 2
    send(deliveries[:half])
    first = _projector_process(broker, database_url, scratch_dir, f"projector-a-{broker.name}")
    time.sleep(3)
    first.kill()
    send(deliveries[half:])
    second = _projector_process(broker, database_url, scratch_dir, f"projector-b-{broker.name}")
    try:
        wait_for_the_fold(database_url, events)
    finally:
        second.stop()
        publisher.close()


def test_two_projector_workers_in_one_group_end_equal_to_the_fold(
    broker: LocalBroker, pool, database_url: str, scratch_dir, unique_source: str
) -> None:
    """Two worker processes share the group's partitions and end in the fold's state."""
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(24, 40, source=unique_source, end=end)
    rng = random.Random(17)
    deliveries = events + rng.sample(events, 40)
    rng.shuffle(deliveries)
    publisher, send = topic_sender(broker)
    workers = [
        _projector_process(broker, database_url, scratch_dir, f"projector-{n}-{broker.name}")
        for n in ("c", "d")
    ]
    try:
        for i in range(0, len(deliveries), 20):
            send(deliveries[i : i + 20])
        wait_for_the_fold(database_url, events)
    finally:
        for worker in workers:
            worker.stop()
        publisher.close()


def test_a_fresh_follower_publishes_the_outbox_first_thing(
    broker: LocalBroker, pool, database_url: str
) -> None:
    """A follower process's first work is publishing (``--stages follow``): reading the
    pseudonymiser on the pooled connection must leave it idle for the relay's
    repeatable-read transaction."""
    at = datetime(2026, 6, 1, tzinfo=UTC)
    found = [
        Transition(transition_id(f"p-{n}", "stage", "new", "active", at), f"p-{n}", "stage",
                   "new", "active", at)
        for n in range(3)
    ]  # fmt: skip
    with psycopg.connect(database_url) as conn:
        transitions_outbox.add(conn, found, at)
    publisher = EventPublisher(broker.bootstrap)
    try:
        projector = Projector(pool, publisher, allowed_lateness=LATENESS)
        assert projector.publish_transitions() == 3
        assert projector.totals.by_kind == {"stage": 3}
    finally:
        publisher.close()
