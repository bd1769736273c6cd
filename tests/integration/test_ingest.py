"""The ingest path against a real broker (both tiers) and a real Postgres."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from kafka import KafkaConsumer

from tenure.contract.topics import EVENT_TYPES, ROUTES
from tenure.runtime.broker import LocalBroker
from tenure.storage import archive
from tenure.storage.tokens import create_token, revoke_token
from tests.factories import make_event
from tests.integration.pipeline import (
    archived_ids,
    ingest_server,
    ledger_ids,
    running_archiver,
    wait_for_archive,
)
from tests.integration.projection_harness import read_topic

pytestmark = pytest.mark.kafka


def post(
    url: str, token: str, events: object, content_type: str = "application/json"
) -> httpx.Response:
    body = events if isinstance(events, bytes) else orjson.dumps(events)
    return httpx.post(
        f"{url}/v1/events",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        timeout=30,
    )


def test_every_type_is_accepted_published_keyed_and_archived(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    events = [make_event(t, source=unique_source, n=i) for i, t in enumerate(EVENT_TYPES)]
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        running_archiver(pool, broker.bootstrap),
    ):
        reply = post(url, token, events)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["accepted"] == len(EVENT_TYPES)
        assert [r["status"] for r in body["results"]] == ["accepted"] * len(EVENT_TYPES)
        ids = wait_for_archive(database_url, unique_source, len(events))
    assert sorted(ids) == sorted(e["id"] for e in events)
    with pool.connection() as conn:
        rows = archive.read_source(conn, unique_source)
    for row in rows:
        route = ROUTES[row.envelope["type"]]
        assert row.topic == route.topic
        assert row.record_key == row.envelope["data"][route.key_field]
        assert row.envelope["ingesttime"].endswith("Z")


def test_events_are_on_the_partition_of_their_key(
    broker: LocalBroker, pool, unique_source: str
) -> None:
    events = [make_event("device.used", source=unique_source, n=i % 3) for i in range(30)]
    with ingest_server(pool, broker.bootstrap) as (url, token):
        assert post(url, token, events).json()["accepted"] == 30
    partitions_by_device: dict[str, set[int]] = {}
    for record in read_topic(broker.bootstrap, ROUTES["device.used"].topic):
        envelope = orjson.loads(record.value)
        if envelope["source"] == unique_source:
            assert record.key.decode() == envelope["data"]["device_id"]
            partitions_by_device.setdefault(record.key.decode(), set()).add(record.partition)
            assert dict(record.headers)["tenure-ingest-time"]
    assert set(partitions_by_device) == {"d0", "d1", "d2"}
    assert all(len(p) == 1 for p in partitions_by_device.values())


BAD_EVENTS = [
    (
        {
            "specversion": "1.0",
            "id": "x",
            "source": "s",
            "type": "device.used",
            "time": "2026-01-01T00:00:00Z",
            "data": {},
        },
        "data.device_id",
    ),
    (
        {
            "specversion": "1.0",
            "id": "x",
            "source": "s",
            "type": "device.beamed",
            "time": "2026-01-01T00:00:00Z",
            "data": {},
        },
        "type",
    ),
    (
        {
            "specversion": "1.0",
            "id": "x",
            "source": "s",
            "type": "payment.refunded",
            "time": "2026-01-01T00:00:00Z",
            "data": {"order_id": "o", "payer_id": "p", "amount_minor": "12", "currency": "EUR"},
        },
        "data.amount_minor",
    ),
    (
        {
            "specversion": "1.0",
            "id": "x",
            "source": "s",
            "type": "device.used",
            "time": "yesterday",
            "data": {"device_id": "d"},
        },
        "time",
    ),
    (
        {
            "id": "x",
            "source": "s",
            "type": "device.used",
            "time": "2026-01-01T00:00:00Z",
            "data": {"device_id": "d"},
        },
        "specversion",
    ),
    ([1, 2, 3], None),
]


def test_rejects_name_the_field_and_write_nothing(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    bad = []
    for event, _ in BAD_EVENTS:
        if isinstance(event, dict):
            event = {**event, "source": unique_source}
        bad.append(event)
    future = make_event(
        "device.used", source=unique_source, at=datetime.now(UTC) + timedelta(hours=2)
    )
    good = make_event("device.used", source=unique_source)
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        running_archiver(pool, broker.bootstrap),
    ):
        reply = post(url, token, [*bad, future, good])
        assert reply.status_code == 200
        results = reply.json()["results"]
        for (_, field), result in zip(BAD_EVENTS, results, strict=False):
            assert result["status"] == "rejected"
            assert result["reason"]
            if field:
                assert result["field"] == field, result
        assert results[len(bad)]["status"] == "rejected"
        assert results[len(bad)]["field"] == "time"
        assert "future" in results[len(bad)]["reason"]
        assert results[-1]["status"] == "accepted"
        ids = wait_for_archive(database_url, unique_source, 1)
    assert ids == [good["id"]]
    assert ledger_ids(database_url, unique_source) == [good["id"]]


FIRST_REQUIRED = {
    "device.activated": "device_id",
    "device.used": "device_id",
    "device.deactivated": "reason",
    "payment.completed": "items",
    "payment.refunded": "amount_minor",
    "subscription.cancelled": "sku",
    "referral.completed": "referee_id",
    "feedback.submitted": "channel",
    "identity.linked": "alias_id",
    "person.erasure_requested": "person_id",
}


def test_every_type_without_a_required_field_is_rejected_naming_it(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    invalid = []
    for event_type, field in FIRST_REQUIRED.items():
        event = make_event(event_type, source=unique_source)
        del event["data"][field]
        invalid.append(event)
    with ingest_server(pool, broker.bootstrap) as (url, token):
        reply = post(url, token, invalid)
    assert reply.status_code == 422
    results = reply.json()["results"]
    assert [r["field"] for r in results] == [f"data.{f}" for f in FIRST_REQUIRED.values()]
    assert all(r["status"] == "rejected" and r["reason"] for r in results)
    assert ledger_ids(database_url, unique_source) == []


def test_old_events_are_accepted(broker: LocalBroker, pool, unique_source: str) -> None:
    old = make_event(
        "device.used", source=unique_source, at=datetime.now(UTC) - timedelta(days=400)
    )
    with ingest_server(pool, broker.bootstrap) as (url, token):
        assert post(url, token, [old]).json()["accepted"] == 1


def test_request_level_errors(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    event = make_event("device.used", source=unique_source)
    with ingest_server(pool, broker.bootstrap, max_body_bytes=4096, max_batch_events=5) as (
        url,
        token,
    ):
        assert post(url, "nope", [event]).status_code == 401
        assert httpx.post(f"{url}/v1/events", json=[event]).status_code == 401
        assert post(url, token, b"[{not json", "application/json").status_code == 400
        ndjson_bad = orjson.dumps(event) + b"\n{oops\n"
        reply = post(url, token, ndjson_bad, "application/x-ndjson")
        assert reply.status_code == 400 and "2" in reply.json()["error"]
        assert post(url, token, [event], "text/plain").status_code == 415
        assert post(url, token, b"[" + b" " * 5000 + b"]").status_code == 413
        too_many = [make_event("device.used", source=unique_source) for _ in range(6)]
        assert post(url, token, too_many).status_code == 413
        all_bad = post(url, token, [{"type": "nope"}])
        assert all_bad.status_code == 422 and all_bad.json()["rejected"] == 1
        with pool.connection() as conn:
            revoked = create_token(conn, "revoked-producer")
            revoke_token(conn, revoked.split("_")[1])
        assert post(url, revoked, [event]).status_code == 403
        ok = post(url, token, orjson.dumps(event) + b"\n\n", "application/x-ndjson")
        assert ok.status_code == 200 and ok.json()["accepted"] == 1
    assert ledger_ids(database_url, unique_source) == [event["id"]]


def test_the_same_event_twice_and_concurrently_is_one_row(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    event = make_event("payment.completed", source=unique_source)
    other = make_event("device.used", source=unique_source)
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        running_archiver(pool, broker.bootstrap),
    ):
        first = post(url, token, [event, event]).json()
        assert [r["status"] for r in first["results"]] == ["accepted", "duplicate"]
        assert post(url, token, [event]).json()["results"][0]["status"] == "duplicate"
        with ThreadPoolExecutor(max_workers=12) as pool_:
            replies = list(pool_.map(lambda _: post(url, token, [other]).json(), range(12)))
        statuses = sorted(r["results"][0]["status"] for r in replies)
        assert statuses == ["accepted"] + ["duplicate"] * 11
        ids = wait_for_archive(database_url, unique_source, 2)
    assert sorted(ids) == sorted([event["id"], other["id"]])


def test_accounting_sent_equals_accepted_duplicates_rejected(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    rng = random.Random(7)
    pool_of_events = [
        make_event(rng.choice(EVENT_TYPES), source=unique_source, n=i) for i in range(150)
    ]
    sent = accepted = duplicates = rejected = 0
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        running_archiver(pool, broker.bootstrap),
    ):
        for _ in range(8):
            batch = []
            for _ in range(rng.randint(10, 60)):
                roll = rng.random()
                if roll < 0.2:
                    broken = dict(rng.choice(pool_of_events))
                    broken["data"] = {}
                    broken["id"] = f"bad-{rng.random()}"
                    batch.append(broken)
                else:
                    batch.append(rng.choice(pool_of_events))  # repeats become duplicates
            reply = post(url, token, batch)
            assert reply.status_code in (200, 422)
            body = reply.json()
            sent += len(batch)
            accepted += body["accepted"]
            duplicates += body["duplicates"]
            rejected += body["rejected"]
        ids = wait_for_archive(database_url, unique_source, accepted)
    assert sent == accepted + duplicates + rejected
    assert len(ids) == accepted == len(set(ids))
    assert accepted > 0 and duplicates > 0 and rejected > 0


def test_broker_failure_answers_503_and_keeps_no_claim(
    pool, database_url: str, unique_source: str
) -> None:
    from tenure.runtime.process import free_port

    event = make_event("device.used", source=unique_source)
    with ingest_server(pool, f"127.0.0.1:{free_port()}") as (url, token):
        reply = post(url, token, [event])
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert ledger_ids(database_url, unique_source) == []
    assert archived_ids(database_url, unique_source) == []


def _out_of_range(source: str) -> list[tuple[dict, str, str]]:
    """Events each of which returned 500 and lost its whole batch before issue 11:
    ``(event, field, start of the reason)``. ``"@big"`` / ``"@e30"`` stand for JSON numbers
    orjson cannot write (see :func:`_body`)."""

    def event(event_type: str = "device.used", **changes: object) -> dict:
        return {**make_event(event_type, source=source), **changes}

    def with_data(event_type: str, **changes: object) -> dict:
        raw = make_event(event_type, source=source)
        raw["data"].update(changes)
        return raw

    big = make_event("payment.completed", source=source)
    big["data"]["items"][0]["amount_minor"] = "@big"
    e30 = make_event("payment.completed", source=source)
    e30["data"]["items"][0]["amount_minor"] = "@e30"
    int64 = "must be between -9223372036854775808 and 9223372036854775807"
    nul = "must not contain the NUL character"
    return [
        (big, "data.items[0].amount_minor", int64),
        (e30, "data.items[0].amount_minor", int64),
        (event(id="x" * 3000), "id", "must be at most 256 characters long"),
        (event(source="urn:" + "s" * 4996), "source", "must be at most 512 characters long"),
        (event(id="evt\x00"), "id", nul),
        (with_data("device.used", device_id="d\x00"), "data.device_id", nul),
        (event(subject="s\x00"), "subject", nul),
        (with_data("device.used", feature="eco\x00"), "data.feature", nul),
        (event(traceparent="00\x00"), "traceparent", nul),
        (event(time="0001-01-01T00:30:00+01:00"), "time", "is out of range"),
    ]


def _body(events: list[dict]) -> bytes:
    """The JSON array of ``events`` with the placeholders replaced by their number literals."""
    return (
        orjson.dumps(events).replace(b'"@big"', b"18446744073709551616").replace(b'"@e30"', b"1e30")
    )


def test_out_of_range_events_are_rejected_per_event_and_their_neighbours_accepted(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    bad = _out_of_range(unique_source)
    first = make_event("payment.completed", source=unique_source, n=1)
    last = make_event("device.used", source=unique_source, n=2)
    batch = [first, *(event for event, _, _ in bad), last]
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        running_archiver(pool, broker.bootstrap),
    ):
        reply = post(url, token, _body(batch))
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert (body["accepted"], body["rejected"]) == (2, len(bad))
        results = body["results"]
        assert results[0]["status"] == results[-1]["status"] == "accepted"
        for (_, field, reason), result in zip(bad, results[1:-1], strict=True):
            assert result["status"] == "rejected", result
            assert result["field"] == field, result
            assert result["reason"].startswith(reason), result
        ids = wait_for_archive(database_url, unique_source, 2)
        # Each kind alone is rejected too (422, every event rejected), never a 500.
        for event, field, _ in bad:
            alone = post(url, token, _body([event]))
            assert alone.status_code == 422, alone.text
            assert alone.json()["results"][0]["field"] == field
    assert sorted(ids) == sorted([first["id"], last["id"]])
    assert sorted(ledger_ids(database_url, unique_source)) == sorted(ids)


def test_out_of_range_events_in_ndjson_are_rejected_per_line(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    bad = _out_of_range(unique_source)
    good = make_event("device.used", source=unique_source)
    lines = [_body([event])[1:-1] for event, _, _ in bad] + [orjson.dumps(good)]
    with ingest_server(pool, broker.bootstrap) as (url, token):
        reply = post(url, token, b"\n".join(lines), "application/x-ndjson")
    assert reply.status_code == 200, reply.text
    results = reply.json()["results"]
    assert [r["field"] for r in results[:-1]] == [field for _, field, _ in bad]
    assert results[-1]["status"] == "accepted"
    assert ledger_ids(database_url, unique_source) == [good["id"]]


def test_the_pending_record_is_the_published_record_on_the_default_partition(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    # The envelope is encoded once for the ledger's pending row and the record; the record
    # is on the partition kafka-python's default partitioner (the Java client's murmur2)
    # gives its key, though the ingest producer remembers key hashes.
    import psycopg
    from kafka.partitioner.default import murmur2

    events = [make_event(t, source=unique_source) for t in EVENT_TYPES for _ in range(3)]
    with ingest_server(pool, broker.bootstrap) as (url, token):
        assert post(url, token, events).json()["accepted"] == len(events)
    with psycopg.connect(database_url) as conn:
        pending = {
            str(event_id): bytes(envelope)
            for event_id, envelope in conn.execute(
                "SELECT event_id, envelope FROM ingest_pending WHERE source = %s",
                (unique_source,),
            )
        }
    assert len(pending) == len(events)
    published: dict[str, bytes] = {}
    for topic in {route.topic for route in ROUTES.values()}:
        probe = KafkaConsumer(bootstrap_servers=broker.bootstrap)
        partitions = len(probe.partitions_for_topic(topic))
        probe.close()
        for record in read_topic(broker.bootstrap, topic):
            try:
                envelope = orjson.loads(record.value)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(envelope, dict) or envelope.get("source") != unique_source:
                continue
            published[envelope["id"]] = record.value
            assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % partitions
    assert published == pending
