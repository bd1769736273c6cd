"""The HTTP producer SDK against the real ingest service, Postgres and broker."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import services.ingest.metrics  # noqa: F401  (the samples read below)
from tenure.runtime.broker import LocalBroker
from tenure.runtime.process import free_port
from tenure.runtime.tansu import TansuBroker
from tenure.sdk import (
    Accepted,
    AsyncTenureHttpProducer,
    Duplicate,
    Rejected,
    RetryPolicy,
    TenureHttpProducer,
    Undelivered,
)
from tests.factories import make_event
from tests.integration.pipeline import ingest_server, ledger_ids

pytestmark = pytest.mark.kafka


def _sample(name: str) -> float:
    """A sample of the ingest service's metrics (the service runs in this process)."""
    return float(REGISTRY.get_sample_value(name) or 0.0)


def test_a_batch_of_valid_and_invalid_events_gets_typed_results_per_event(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    valid = [make_event("device.used", source=unique_source, n=i) for i in range(3)]
    missing = make_event("device.used", source=unique_source, data={"duration_s": 1.0})
    wrong_type = {**make_event("device.used", source=unique_source), "type": "device.exploded"}
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        TenureHttpProducer(url, token) as producer,
    ):
        results = producer.send_all([valid[0], missing, valid[1], wrong_type, valid[2]])
    assert [type(r) for r in results] == [Accepted, Rejected, Accepted, Rejected, Accepted]
    assert [r.id for r in results] == [e["id"] for e in (valid[0], missing, valid[1])] + [
        wrong_type["id"],
        valid[2]["id"],
    ]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [r.field for r in rejected] == ["data.device_id", "type"]
    assert all(r.reason for r in rejected) and not any(r.delivered for r in rejected)
    assert sorted(ledger_ids(database_url, unique_source)) == sorted(e["id"] for e in valid)


def test_duplicates_are_reported_as_delivered_and_ids_are_kept_on_resend(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    events = [make_event("payment.completed", source=unique_source, n=i) for i in range(4)]
    without_id = make_event("device.used", source=unique_source)
    del without_id["id"]
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        TenureHttpProducer(url, token, max_batch_events=3) as producer,
    ):
        first = producer.send_all([*events, without_id])
        given = first[-1].id
        again = producer.send_all([*events, {**without_id, "id": given}])
    assert all(isinstance(r, Accepted) for r in first) and given
    assert all(isinstance(r, Duplicate) and r.delivered for r in again)
    assert [r.id for r in again] == [r.id for r in first]
    assert len(ledger_ids(database_url, unique_source)) == 5


def test_async_producer_batches_by_count_and_by_flush_interval(
    broker: LocalBroker, pool, unique_source: str
) -> None:
    events = [make_event("device.used", source=unique_source, n=i) for i in range(7)]

    async def send() -> tuple[list[object], list[object]]:
        async with AsyncTenureHttpProducer(
            url, token, max_batch_events=3, flush_interval_s=0.2
        ) as producer:
            futures = [await producer.send(e) for e in events]
            by_count = list(await asyncio.gather(*futures[:6]))  # two full requests
            late = list(await asyncio.gather(futures[6]))  # sent by the flush timer
            return by_count, late

    with ingest_server(pool, broker.bootstrap) as (url, token):
        requests_before = _sample("tenure_ingest_batch_events_count")
        events_before = _sample("tenure_ingest_batch_events_sum")
        by_count, late = asyncio.run(send())
        requests = _sample("tenure_ingest_batch_events_count") - requests_before
        sent = _sample("tenure_ingest_batch_events_sum") - events_before
    assert all(isinstance(r, Accepted) for r in [*by_count, *late])
    assert (requests, sent) == (3, 7)


def test_a_503_is_retried_until_the_broker_is_back_then_delivered(
    pool, database_url: str, unique_source: str, scratch_dir: Path
) -> None:
    """The broker is down (ingest answers 503, Retry-After: 1) until the SDK has retried."""
    port = free_port()
    events = [make_event("device.used", source=unique_source, n=i) for i in range(3)]
    late_broker = TansuBroker(scratch_dir / f"late-broker-{port}", port=port)
    (scratch_dir / f"late-broker-{port}").mkdir()
    retry = RetryPolicy(deadline_s=60, max_backoff_s=2)
    with (
        ingest_server(pool, f"127.0.0.1:{port}", publish_timeout_s=2) as (url, token),
        TenureHttpProducer(url, token, retry=retry) as producer,
        ThreadPoolExecutor(1) as pool_of_one,
    ):
        refused_before = _sample("tenure_ingest_publish_failures_total")
        sending = pool_of_one.submit(producer.send_all, events)
        deadline = time.monotonic() + 30
        while _sample("tenure_ingest_publish_failures_total") == refused_before:
            assert time.monotonic() < deadline, "ingest never answered 503"
            time.sleep(0.1)
        try:
            late_broker.start()
            results = sending.result(timeout=60)
        finally:
            late_broker.stop()
    assert all(isinstance(r, Accepted) for r in results), results
    assert all(r.attempts >= 2 for r in results)
    assert sorted(ledger_ids(database_url, unique_source)) == sorted(e["id"] for e in events)


def test_the_sdk_gives_up_at_its_deadline_and_says_why(pool, unique_source: str) -> None:
    event = make_event("device.used", source=unique_source)
    retry = RetryPolicy(deadline_s=3, max_backoff_s=1)
    with (
        ingest_server(pool, f"127.0.0.1:{free_port()}", publish_timeout_s=1) as (url, token),
        TenureHttpProducer(url, token, retry=retry) as producer,
    ):
        (result,) = producer.send_all([event])
    assert isinstance(result, Undelivered) and not result.delivered
    assert result.status == 503 and result.attempts >= 2 and result.id == event["id"]
    assert result.reason.startswith(f"gave up after {result.attempts} attempts")


def test_a_request_level_refusal_is_undelivered_with_the_status(
    broker: LocalBroker, pool, unique_source: str
) -> None:
    with (
        ingest_server(pool, broker.bootstrap) as (url, _token),
        TenureHttpProducer(url, "not-a-token") as producer,
    ):
        (result,) = producer.send_all([make_event("device.used", source=unique_source)])
    assert isinstance(result, Undelivered) and result.status == 401 and result.attempts == 1
