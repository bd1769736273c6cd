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
