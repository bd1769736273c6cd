"""The official CloudEvents SDKs as clients: every HTTP content mode on ingest, both Kafka modes
through the SDK validator, and one ``content-type`` on every canonical record.

Python: ``cloudevents`` (PyPI, its v1 API). JavaScript: ``cloudevents`` (npm 10.x, run with
node; installed into the test cache on first use, see ``tests/integration/tools``). Neither
SDK has a batch serializer (both read batches), so the batched request is the JSON array of
the SDK's own structured serialisations, sent as ``application/cloudevents-batch+json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.v1 import kafka as ce_kafka
from cloudevents.v1.conversion import to_binary, to_json, to_structured
from cloudevents.v1.http import CloudEvent
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tenure.contract.topics import DEVICE_EVENTS, SDK_EVENTS
from tenure.eventlog.publisher import CLOUDEVENTS_CONTENT_TYPE
from tenure.runtime.broker import LocalBroker
from tenure.runtime.process import ManagedProcess, free_port, port_open
from tests.integration.conftest import env_for
from tests.integration.pipeline import ingest_server, ledger_ids
from tests.integration.tools import cloudevents_js

pytestmark = pytest.mark.kafka
JS_CLIENT = Path(__file__).with_name("clients") / "cloudevents_modes.js"


def sdk_event(source: str, event_id: str, **data: Any) -> CloudEvent:
    """A ``device.used`` event made with the Python CloudEvents SDK."""
    attributes = {
        "type": "device.used",
        "source": source,
        "id": event_id,
        "time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, data or {"device_id": f"py-{event_id}", "duration_s": 30.0})


def post(url: str, token: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/events",
        content=body,
        headers={**headers, "Authorization": f"Bearer {token}"},
        timeout=30,
    )


def statuses(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["id"], r["status"]) for r in answer["results"]]


def canonical_records(bootstrap: str, source: str, expected: int, timeout_s: float = 30) -> list:
    """Records of ``source`` on the device topic (waits until ``expected`` are there)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1500
    )
    parts = [
        TopicPartition(DEVICE_EVENTS, p) for p in consumer.partitions_for_topic(DEVICE_EVENTS) or ()
    ]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    found: list = []
    deadline = time.monotonic() + timeout_s
    while len(found) < expected and time.monotonic() < deadline:
        found += [r for r in consumer if _source_of(r.value) == source]
    consumer.close()
    return found


def _source_of(value: bytes | None) -> object:
    """A record's ``source``; ``None`` for what other tests on the shared broker put on the
    topic that is not a JSON object (a poison record): not this test's records."""
    try:
        decoded = json.loads(value) if value is not None else None
    except ValueError:
        return None
    return decoded.get("source") if isinstance(decoded, dict) else None


def test_python_sdk_structured_batched_and_binary_requests(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    if broker.name != "tansu":
        pytest.skip("HTTP content modes: runs once, on the embedded broker")
    structured = sdk_event(unique_source, "py-structured")
    batch = [sdk_event(unique_source, f"py-batched-{i}") for i in range(2)]
    invalid = sdk_event(unique_source, "py-batched-invalid", duration_s=1.0)
    binary = sdk_event(unique_source, "py-binary")
    with ingest_server(pool, broker.bootstrap) as (url, token):
        answers = {
            "structured": post(url, token, *to_structured(structured)),
            "batched": post(
                url,
                token,
                {"Content-Type": "application/cloudevents-batch+json"},
                b"[" + b",".join(to_json(e) for e in [*batch, invalid]) + b"]",
            ),
            "binary": post(url, token, *to_binary(binary)),
            "binary again": post(url, token, *to_binary(binary)),
        }
        records = canonical_records(broker.bootstrap, unique_source, 4)
    assert {mode: a.status_code for mode, a in answers.items()} == dict.fromkeys(answers, 200)
    assert statuses(answers["structured"].json()) == [("py-structured", "accepted")]
    assert statuses(answers["batched"].json()) == [
        ("py-batched-0", "accepted"),
        ("py-batched-1", "accepted"),
        ("py-batched-invalid", "rejected"),
    ]
    assert answers["batched"].json()["results"][2]["field"] == "data.device_id"
    assert statuses(answers["binary"].json()) == [("py-binary", "accepted")]
    assert statuses(answers["binary again"].json()) == [("py-binary", "duplicate")]
    assert sorted(ledger_ids(database_url, unique_source)) == sorted(
        ["py-structured", "py-batched-0", "py-batched-1", "py-binary"]
    )
    assert len(records) == 4
    assert {dict(r.headers)["content-type"] for r in records} == {CLOUDEVENTS_CONTENT_TYPE}
    binary_record = next(r for r in records if json.loads(r.value)["id"] == "py-binary")
    assert json.loads(binary_record.value)["data"] == binary.get_data()


def test_javascript_sdk_structured_batched_and_binary_requests(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    if broker.name != "tansu":
        pytest.skip("HTTP content modes: runs once, on the embedded broker")
    modules = cloudevents_js() / "node_modules"
    with ingest_server(pool, broker.bootstrap) as (url, token):
        done = subprocess.run(
            ["node", str(JS_CLIENT), url, token, unique_source],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NODE_PATH": str(modules)},
        )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    print("\n" + json.dumps(answers, indent=1))
    assert statuses(answers["structured"]) == [("js-structured", "accepted")]
    assert statuses(answers["binary"]) == [("js-binary", "accepted")]
    assert statuses(answers["binary_again"]) == [("js-binary", "duplicate")]
    assert statuses(answers["batched"]) == [
        ("js-batched-0", "accepted"),
        ("js-batched-1", "accepted"),
        ("js-batched-invalid", "rejected"),
    ]
    assert answers["batched"]["results"][2]["field"] == "data.device_id"
    assert sorted(ledger_ids(database_url, unique_source)) == sorted(
        ["js-structured", "js-binary", "js-batched-0", "js-batched-1"]
    )


def test_kafka_structured_and_binary_records_are_forwarded_with_ingests_content_type(
    broker: LocalBroker, pool, database_url: str, unique_source: str, scratch_dir: Path
) -> None:
    """Python SDK Kafka messages in both modes through the SDK validator, next to ingest's."""
    structured = ce_kafka.to_structured(sdk_event(unique_source, "kafka-structured"))
    binary = ce_kafka.to_binary(sdk_event(unique_source, "kafka-binary"))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for message in (structured, binary):
        producer.send(
            SDK_EVENTS, key=b"k", value=message.value, headers=list(message.headers.items())
        ).get(timeout=10)
    producer.close()

    metrics_port = free_port()
    validator = ManagedProcess(
        "sdk-validator",
        [sys.executable, "-m", "tenure.cli.app", "worker", "sdk-validator",
         "--metrics-port", str(metrics_port)],
        scratch_dir / f"sdk-validator-modes-{broker.name}.log",
        env=env_for(
            broker.bootstrap,
            database_url,
            TENURE_STATE_DIR=str(scratch_dir / f"state-modes-{broker.name}"),
        ),
    )  # fmt: skip
    validator.start()
    try:
        validator.wait_ready(lambda: port_open("127.0.0.1", metrics_port), 60)
        forwarded = canonical_records(broker.bootstrap, unique_source, 2, timeout_s=90)
    finally:
        validator.stop()
    with ingest_server(pool, broker.bootstrap) as (url, token):
        reply = post(url, token, *to_structured(sdk_event(unique_source, "via-ingest")))
        assert reply.status_code == 200
    records = canonical_records(broker.bootstrap, unique_source, 3)
    by_id = {json.loads(r.value)["id"]: r for r in records}
    assert sorted(by_id) == ["kafka-binary", "kafka-structured", "via-ingest"]
    content_types = {name: dict(r.headers).get("content-type") for name, r in by_id.items()}
    assert set(content_types.values()) == {CLOUDEVENTS_CONTENT_TYPE}, content_types
    header_names = {name: sorted(k for k, _ in r.headers) for name, r in by_id.items()}
    assert len({tuple(v) for v in header_names.values()}) == 1, header_names
    assert json.loads(by_id["kafka-binary"].value)["data"]["device_id"] == "py-kafka-binary"
    assert len(forwarded) >= 2
