"""Events written straight to Kafka by the SDK, and the archiver's crash safety."""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from kafka import KafkaProducer

from tenure.contract.topics import (
    DEAD_LETTERS,
    DEVICE_EVENTS,
    EVENT_TYPES,
    REASON_HEADER,
    SDK_EVENTS,
)
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.runtime.broker import LocalBroker
from tenure.runtime.process import ManagedProcess, free_port, port_open
from tenure.sdk import TenureProducer
from tests.factories import make_event
from tests.integration.conftest import env_for
from tests.integration.pipeline import running_archiver, wait_for_archive
from tests.integration.projection_harness import read_topic

pytestmark = pytest.mark.kafka


def metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_sdk_events_are_forwarded_or_dead_lettered_with_the_reason(
    broker: LocalBroker, pool, database_url: str, unique_source: str, scratch_dir: Path
) -> None:
    valid = [make_event(t, source=unique_source, n=i) for i, t in enumerate(EVENT_TYPES)]
    missing_field = make_event("device.used", source=unique_source, data={})
    unknown_type = make_event("device.beamed", source=unique_source, data={})
    garbage = f"garbage-{uuid.uuid4().hex}".encode()
    # A record the validator could not even route (it raised while converting the time to
    # UTC), lost before with no dead letter.
    overflow_time = make_event("device.used", source=unique_source, n=90)
    overflow_time["time"] = "0001-01-01T00:30:00+01:00"
    unroutable = [json.dumps(overflow_time).encode()]
    sdk = TenureProducer(broker.bootstrap)
    assert sdk.send_all([*valid, missing_field, unknown_type]) == len(valid) + 2
    sdk.close()
    raw = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for value in (garbage, *unroutable):
        raw.send(SDK_EVENTS, key=b"x", value=value).get(timeout=10)
    raw.close()
    sent = len(valid) + 4

    metrics_port = free_port()
    validator = ManagedProcess(
        "sdk-validator",
        [
            sys.executable,
            "-m",
            "tenure.cli.app",
            "worker",
            "sdk-validator",
            "--metrics-port",
            str(metrics_port),
        ],
        scratch_dir / f"sdk-validator-{broker.name}.log",
        env=env_for(
            broker.bootstrap,
            database_url,
            TENURE_STATE_DIR=str(scratch_dir / f"state-{broker.name}"),
        ),
    )
    validator.start()
    try:
        validator.wait_ready(lambda: port_open("127.0.0.1", metrics_port), 60)
        with running_archiver(pool, broker.bootstrap):
            ids = wait_for_archive(database_url, unique_source, len(valid), timeout=90)
        deadline = time.monotonic() + 30
        while True:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            counted = metric_total(text, "tenure_sdk_records_total")
            if counted >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        validator.stop()
    assert sorted(ids) == sorted(e["id"] for e in valid)
    assert metric_total(text, "tenure_sdk_records_total", outcome="forwarded") == len(valid)
    assert metric_total(text, "tenure_sdk_records_total", outcome="dead_lettered") == 4
    assert metric_total(text, "tenure_dead_letters_total", worker="sdk-validator") == 4

    dead = [
        r
        for r in read_topic(broker.bootstrap, DEAD_LETTERS)
        if unique_source.encode() in r.value or r.value == garbage
    ]
    reasons = {r.value: dict(r.headers) for r in dead}
    assert len(dead) == 4
    assert all(h[REASON_HEADER] for h in reasons.values())
    assert reasons[garbage]["tenure-reason-category"] == b"malformed"
    by_category = sorted(h["tenure-reason-category"] for h in reasons.values())
    assert {b"malformed", b"schema", b"unknown_type"} <= set(by_category)
    assert set(unroutable) <= set(reasons)
    assert any(h["tenure-reason-field"] == b"data.device_id" for h in reasons.values())
    with psycopg.connect(database_url) as conn:  # and each in the dead_letters table
        stored = conn.execute(
            "SELECT payload, category FROM dead_letters WHERE stage = 'sdk-validator'"
        ).fetchall()
    assert sorted(bytes(p) for p, _ in stored) == sorted(reasons)


@pytest.mark.soak  # a fault run (`make test-faults`); the fault matrix kills it under `tenure up`
def test_archiver_killed_mid_stream_ends_with_each_event_once(
    broker: LocalBroker, database_url: str, unique_source: str, scratch_dir: Path
) -> None:
    events = [make_event("device.used", source=unique_source, n=i % 50) for i in range(6000)]
    publisher = EventPublisher(broker.bootstrap)
    records = [
        OutgoingRecord(DEVICE_EVENTS, e["data"]["device_id"], orjson.dumps(e)) for e in events
    ]
    publisher.publish(records[:3000])
    publisher.publish([OutgoingRecord(DEVICE_EVENTS, "junk", b"{not json")])
    group = f"archiver-kill-{uuid.uuid4().hex[:6]}"

    def start() -> ManagedProcess:
        proc = ManagedProcess(
            "archiver",
            [
                sys.executable,
                "-c",
                "import sys; from tenure.cli.preflight import configuration, entry_settings; "
                "from tenure.entrypoints.archiver import run; "
                "run(entry_settings(configuration(), kafka=True), group_id=sys.argv[1])",
                group,
            ],
            scratch_dir / f"archiver-{group}.log",
            env=env_for(
                broker.bootstrap,
                database_url,
                TENURE_LOG_LEVEL="WARNING",
                TENURE_ARCHIVER_METRICS_PORT="0",  # any free port: runs beside other tests
            ),
        )
        proc.start()
        return proc

    first = start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = len(wait_for_archive(database_url, unique_source, 1, timeout=1))
        if got > 0:
            break
    first.kill()  # SIGKILL mid-stream: no commit, no goodbye
    publisher.publish(records[3000:])
    second = start()
    try:
        ids = wait_for_archive(database_url, unique_source, len(events), timeout=120)
    finally:
        second.stop()
        publisher.close()
    assert len(ids) == len(set(ids)) == len(events)
    dead = [r for r in read_topic(broker.bootstrap, DEAD_LETTERS) if r.value == b"{not json"]
    assert dead and re.search(rb"JSON", dict(dead[-1].headers)[REASON_HEADER])
