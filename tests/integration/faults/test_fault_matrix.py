"""The fault matrix: a steady stream through `tenure up` while one part is killed or stalled.

For each fault, on the embedded broker and on Apache Kafka: every event sent gets an answer
(``accepted``, ``duplicate`` or ``rejected``); every acknowledged event is archived exactly
once and is in the ingest ledger; the live read models of the stream's people end equal to
the pure fold of its events; and at the end `tenure replay` of the archive changes no row.
Figures and how to rerun: ``RELIABILITY.md``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tenure.runtime.apache_kafka import ApacheKafkaBroker, java_and_maven_missing
from tenure.runtime.process import StartupError, free_port
from tenure.sdk.producer import TenureProducer
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS
from tenure.storage.tokens import create_token
from tests.conftest import skip_tier
from tests.factories import scenario
from tests.integration.faults.platform_process import PlatformProcess, wait_gone
from tests.integration.faults.steady_stream import SteadyStream, StreamBooks
from tests.integration.pipeline import (
    archived_ids,
    ledger_ids,
    read_model_rows,
    wait_for_archive,
    wait_for_the_fold,
)

pytestmark = pytest.mark.soak  # `make test-faults`: a soak run, outside the default `make test`

BROKERS = ("tansu", "apache-kafka")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FAULTS = (
    "kill-archiver",
    "kill-projector",
    "kill-ingest",
    "kill-sdk-validator",
    "kill-broker",
    "kill-postgres",
    "stall-projector-then-kill",
    "restart-up-with-lagging-projector",
)


class FaultedPlatform:
    """`tenure up` under test, with the external Apache Kafka broker when there is one."""

    def __init__(self, platform: PlatformProcess, kafka: ApacheKafkaBroker | None) -> None:
        self.platform = platform
        self.kafka = kafka
        status = platform.status
        self.database_url = status.database_url
        self.ingest_url = status.ingest_url
        self.bootstrap = status.kafka_bootstrap
        with psycopg.connect(self.database_url) as conn:
            self.token = create_token(conn, "fault-matrix")


@pytest.fixture(scope="module", params=BROKERS)
def faulted(request: pytest.FixtureRequest, scratch_dir: Path) -> Iterator[FaultedPlatform]:
    kind = request.param
    root = scratch_dir / f"faults-{kind}"
    root.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TENURE_KAFKA_BOOTSTRAP", "TENURE_DATABASE_URL")
    }
    env["TENURE_STATE_DIR"] = str(root / "state")
    for name in (
        "TENURE_INGEST_PORT",
        "TENURE_QUERY_PORT",
        "TENURE_ARCHIVER_METRICS_PORT",
        "TENURE_SDK_VALIDATOR_METRICS_PORT",
        "TENURE_PROJECTOR_METRICS_PORT",
        "TENURE_EMBEDDED_BROKER_PORT",
        "TENURE_EMBEDDED_POSTGRES_PORT",
    ):
        env[name] = str(free_port())  # fixed, so a restarted part answers where it did
    kafka: ApacheKafkaBroker | None = None
    if kind == "apache-kafka":
        missing = java_and_maven_missing()
        if missing:
            skip_tier(kind, missing)
        kafka = ApacheKafkaBroker(root / "kafka")
        try:
            kafka.start()
        except (StartupError, OSError) as exc:
            skip_tier(kind, f"{kind} did not start: {exc}")
        env["TENURE_KAFKA_BOOTSTRAP"] = kafka.bootstrap
    platform = PlatformProcess(root / "state", env, root / "tenure-up.log")
    try:
        platform.start()
        yield FaultedPlatform(platform, kafka)
    finally:
        platform.close()
        if kafka is not None:
            kafka.stop()


def _stream_via_sdk(bootstrap: str, events: list[dict[str, Any]], books: StreamBooks) -> None:
    """Send ``events`` through the Kafka SDK in small acknowledged batches."""
    producer = TenureProducer(bootstrap)
    try:
        for i in range(0, len(events), 10):
            batch = events[i : i + 10]
            books.sent.extend(e["id"] for e in batch)
            producer.send_all(batch, timeout_s=30)
            books.outcome.update((e["id"], "accepted") for e in batch)
            time.sleep(0.05)
    finally:
        producer.close()


def _inject(fault: str, faulted: FaultedPlatform, stream: SteadyStream) -> None:
    """Inject ``fault`` a third of the way into the stream and wait until it is healed."""
    platform = faulted.platform
    stream.wait_for_progress(0.3)
    if fault.startswith("kill-") and fault != "kill-broker":
        part = fault.removeprefix("kill-")
        pid = platform.signal(part, signal.SIGKILL)
        wait_gone(pid)
        platform.wait_restarted(part, pid)
    elif fault == "kill-broker" and faulted.kafka is None:
        recoveries = platform.status.broker_recoveries
        pid = platform.signal("broker", signal.SIGKILL)
        wait_gone(pid)
        deadline = time.monotonic() + 90
        while platform.status.broker_recoveries == recoveries:
            assert time.monotonic() < deadline, platform.log_tail()
            time.sleep(0.2)
    elif fault == "kill-broker":
        assert faulted.kafka is not None
        faulted.kafka.kill()
        time.sleep(1.0)
        faulted.kafka.start()
    elif fault == "stall-projector-then-kill":
        pid = platform.signal("projector", signal.SIGSTOP)
        stream.wait_for_progress(0.8)
        os.killpg(pid, signal.SIGKILL)
        wait_gone(pid)
        platform.wait_restarted("projector", pid)
    else:
        raise AssertionError(f"no such fault {fault}")


def _run_case(
    faulted: FaultedPlatform,
    events: list[dict[str, Any]],
    deliveries: list[dict[str, Any]],
    fault: str,
) -> tuple[StreamBooks, StreamBooks]:
    """Stream ``deliveries`` while ``fault`` happens; return the HTTP and SDK books."""
    sdk_books = StreamBooks()
    http_part = deliveries
    sdk: threading.Thread | None = None
    if fault == "kill-sdk-validator":
        in_sdk = {e["id"] for e in events[::3]}
        http_part = [e for e in deliveries if e["id"] not in in_sdk]
        sdk_part = [e for e in events if e["id"] in in_sdk]
        sdk = threading.Thread(
            target=_stream_via_sdk, args=(faulted.bootstrap, sdk_part, sdk_books)
        )
        sdk.start()
    url: Callable[[], str] = lambda: faulted.ingest_url  # noqa: E731
    stream = SteadyStream(url, faulted.token, http_part)
    if fault == "restart-up-with-lagging-projector":
        platform = faulted.platform
        stalled = platform.signal("projector", signal.SIGSTOP)
        books = stream.start().join()
        source = events[0]["source"]
        wait_for_archive(faulted.database_url, source, len(books.acknowledged), timeout=60)
        assert platform.stop() == 0, platform.log_tail()
        wait_gone(stalled)
        platform.start()
    else:
        stream.start()
        _inject(fault, faulted, stream)
        books = stream.join()
    if sdk is not None:
        sdk.join(timeout=120)
    return books, sdk_books


BROKER_INDEPENDENT = frozenset({"kill-ingest", "kill-postgres", "stall-projector-then-kill"})
"""Faults of parts whose recovery does not depend on the broker: run on the embedded one."""


@pytest.mark.parametrize("fault", FAULTS)
def test_no_acknowledged_event_is_lost_and_the_read_models_equal_the_fold(
    faulted: FaultedPlatform, fault: str
) -> None:
    if faulted.kafka is not None and fault in BROKER_INDEPENDENT:
        pytest.skip("the same recovery path as on the embedded broker; run there")
    seed = 200 + FAULTS.index(fault)
    source = f"urn:tenure:faults:{fault}"
    events = scenario(seed, 12, source=source, end=datetime.now(UTC) - timedelta(hours=2))
    rng = random.Random(seed)
    deliveries = events + rng.sample(events, 20)  # producers retry: duplicates
    rng.shuffle(deliveries)  # devices send late: out of order

    books, sdk_books = _run_case(faulted, events, deliveries, fault)

    # Accounting: every event sent over HTTP was answered, none was refused.
    tally = books.tally()
    assert tally["unanswered"] == 0, (tally, books.requests)
    assert tally["rejected"] == 0, tally
    assert books.server_errors() == 0, books.requests
    sent = set(books.sent) | set(sdk_books.sent)
    acknowledged = books.acknowledged | sdk_books.acknowledged
    assert acknowledged == sent == {e["id"] for e in events}

    # Nothing acknowledged is lost; nothing is archived twice; the ledger holds HTTP events.
    archived = wait_for_archive(faulted.database_url, source, len(acknowledged), timeout=120)
    assert sorted(archived) == sorted(acknowledged)
    assert sorted(ledger_ids(faulted.database_url, source)) == sorted(books.acknowledged)

    # The live read models converge to the pure fold of the events.
    wait_for_the_fold(faulted.database_url, events, timeout_s=120)
    assert sorted(archived_ids(faulted.database_url, source)) == sorted(acknowledged)
    _record_case(faulted, fault, books, sdk_books, archived, events)


def _record_case(
    faulted: FaultedPlatform,
    fault: str,
    books: StreamBooks,
    sdk_books: StreamBooks,
    archived: list[str],
    events: list[dict[str, Any]],
) -> None:
    """Append the case's figures to ``tests/artifacts/fault-matrix.jsonl`` (RELIABILITY.md)."""
    persons = {e["data"].get(f) for e in events for f in ("person_id", "payer_id")} - {None}
    figures = {
        "broker": "apache-kafka" if faulted.kafka else "tansu",
        "fault": fault,
        "requests_sent": len(books.sent) + len(sdk_books.sent),
        "events": len(events),
        **{f"final_{k}": v for k, v in sorted((books.tally() + sdk_books.tally()).items())},
        "http_answers": dict(sorted(books.requests.items())),
        "archived": len(archived),
        "persons_checked": len(persons),
        "lost": len(set(books.acknowledged | sdk_books.acknowledged) - set(archived)),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "fault-matrix.jsonl", "a") as out:
        out.write(json.dumps(figures) + "\n")


def test_replay_of_the_archive_changes_no_row_after_the_faults(
    faulted: FaultedPlatform,
) -> None:
    database_url = faulted.database_url
    before = (
        read_model_rows(database_url, "persons", PERSON_COLUMNS),
        read_model_rows(database_url, "devices", DEVICE_COLUMNS),
    )
    env = dict(faulted.platform.env, TENURE_DATABASE_URL=database_url)
    result = subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", "replay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    after = (
        read_model_rows(database_url, "persons", PERSON_COLUMNS),
        read_model_rows(database_url, "devices", DEVICE_COLUMNS),
    )
    assert before[0] and after == before
