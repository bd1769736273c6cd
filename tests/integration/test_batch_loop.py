"""The batch loop every worker consumes with (``tenure/eventlog/batch_loop.py``), on a real
broker: offsets are committed only after a batch is durable, a transient failure is waited
out and the batch written again, any other failure stops the loop with nothing committed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from tenure.eventlog.admin import ensure_topics
from tenure.eventlog.batch_loop import (
    BatchHandler,
    BatchLoop,
    ConsumeSettings,
    run_until,
)
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.runtime.broker import LocalBroker

pytestmark = pytest.mark.kafka


class Recording(BatchHandler[list[bytes]]):
    """Writes values to a list; the first ``transient`` writes fail as a lost database
    would; with ``fail`` every write fails for good."""

    def __init__(self, stop: threading.Event, expected: int, *, transient: int = 0,
                 fail: bool = False) -> None:  # fmt: skip
        self.stop, self.expected = stop, expected
        self.transient_failures, self.fail = transient, fail
        self.durable: list[bytes] = []
        self.committed_values: list[bytes] = []

    def prepare(self, records: Sequence[Any]) -> list[bytes]:
        return [r.value for r in records]

    def write(self, prepared: list[bytes]) -> None:
        if self.fail:
            raise RuntimeError("a bug, not the moment")
        if self.transient_failures:
            self.transient_failures -= 1
            raise psycopg.OperationalError("the database went away")
        self.durable += prepared

    def committed(self, records: Sequence[Any], prepared: list[bytes]) -> None:
        assert all(v in self.durable for v in prepared)  # durable before committed
        self.committed_values += prepared
        if len(self.committed_values) >= self.expected:
            self.stop.set()


def _topic_with(broker: LocalBroker, n: int) -> str:
    topic = f"test.batch-loop.{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, partitions=2, topics=(topic,))
    publisher = EventPublisher(broker.bootstrap)
    publisher.publish([OutgoingRecord(topic, f"k{i % 5}", b"v%d" % i) for i in range(n)])
    publisher.close()
    return topic


def _committed(broker: LocalBroker, group: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group)
    try:
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in (0, 1))
    finally:
        consumer.close()


def _run(broker: LocalBroker, topic: str, group: str, handler: Recording) -> list[str]:
    """Run the loop until the handler saw every record, a write failed for good, or 60 s."""
    failures: list[str] = []

    def failed() -> None:
        failures.append("failed")
        handler.stop.set()

    settings = ConsumeSettings(broker.bootstrap, group, (topic,), "test-loop", batch_max=40)
    watchdog = threading.Timer(60, handler.stop.set)
    watchdog.start()
    try:
        run_until(handler.stop, BatchLoop(handler, settings, on_failure=failed))
    except RuntimeError:
        pass  # the failed write, raised again when the loop stops
    finally:
        watchdog.cancel()
    return failures


def test_a_transient_failure_is_waited_out_and_offsets_follow_durable_batches(
    broker: LocalBroker,
) -> None:
    topic, group = _topic_with(broker, 200), f"test-loop-{uuid.uuid4().hex[:8]}"
    handler = Recording(threading.Event(), 200, transient=2)
    assert _run(broker, topic, group, handler) == []
    assert sorted(handler.durable) == sorted(b"v%d" % i for i in range(200))  # each once
    assert _committed(broker, group, topic) == 200
    assert REGISTRY.get_sample_value("tenure_worker_ready", {"worker": "test-loop"}) == 1


def test_a_failure_that_is_not_transient_stops_the_loop_with_nothing_committed(
    broker: LocalBroker,
) -> None:
    topic, group = _topic_with(broker, 50), f"test-loop-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    handler = Recording(stop, 50, fail=True)
    assert _run(broker, topic, group, handler) == ["failed"]
    assert handler.durable == [] and handler.committed_values == []
    assert _committed(broker, group, topic) == 0  # delivered again to the next worker
