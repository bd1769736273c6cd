from __future__ import annotations

import orjson

from streams.archiver.records import to_archive_record
from tenure.eventlog.deadletter import DeadLetter
from tenure.storage.archive import ArchiveRecord
from tests.factories import make_event


def test_an_envelope_becomes_an_archive_row() -> None:
    event = make_event("device.used") | {"ingesttime": "2026-11-20T10:00:00Z"}
    row = to_archive_record("t", 2, 17, b"d0", orjson.dumps(event))
    assert isinstance(row, ArchiveRecord)
    assert (row.source, row.event_id, row.event_type) == (
        event["source"],
        event["id"],
        "device.used",
    )
    assert row.ingested_at is not None and row.ingested_at.tzinfo is not None
    assert (row.topic, row.partition, row.offset, row.record_key) == ("t", 2, 17, "d0")


def test_records_that_are_not_envelopes_become_dead_letters() -> None:
    cases = {
        b"{nope": "malformed",
        b"[1]": "envelope",
        orjson.dumps(
            {"id": "x", "type": "device.used", "time": "2026-01-01T00:00:00Z"}
        ): "envelope",
        orjson.dumps(make_event("device.used") | {"time": "2026-01-01T00:00:00"}): "envelope",
    }
    for value, category in cases.items():
        dead = to_archive_record("t", 0, 5, None, value)
        assert isinstance(dead, DeadLetter), value
        assert dead.category == category and dead.reason and dead.origin == "t/0/5"
        record = dead.to_record()
        headers = dict(record.headers)
        assert record.topic == "tenure.deadletter.v1" and record.value == value
        assert headers["tenure-reason"] and headers["tenure-origin"] == b"t/0/5"


def test_a_batch_is_prepared_into_rows_with_their_records_and_unreadable_letters() -> None:
    from aiokafka.structs import ConsumerRecord
    from psycopg_pool import ConnectionPool

    from streams.archiver.worker import ArchiveBatches
    from tenure.eventlog.publisher import EventPublisher

    def record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord("t", 1, offset, 0, 0, b"k", value, None, len(b"k"), len(value), ())

    good = [record(i, orjson.dumps(make_event("device.used", n=i))) for i in range(3)]
    junk = record(3, b"{nope")
    # Preparing touches neither the pool nor the broker (neither is opened here).
    batches = ArchiveBatches(ConnectionPool("", open=False), EventPublisher("unused:1"))
    batch = batches.prepare([good[0], junk, *good[1:]])
    assert [(r.offset, m) for r, m in batch.rows] == [(g.offset, g) for g in good]
    assert [(d.category, d.origin) for d in batch.unreadable] == [("malformed", "t/1/3")]
    assert batch.dead == [] and batch.archived == []  # filled by the write
