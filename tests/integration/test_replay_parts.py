"""`tenure replay` under a tiny memory bound folds the archive part by part (independent
persons at a time) and writes exactly what the replay in one part writes, which is the pure
fold of the archive (Postgres only: the archive is filled directly)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from streams.archiver.records import to_archive_record
from tenure.contract.topics import ROUTES
from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.world import fold, views
from tenure.projection.replay import aliases_by_person, replay
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS
from tenure.storage import archive
from tenure.storage.archive import ArchiveRecord
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS, device_row, person_row
from tests.factories import scenario
from tests.integration.pipeline import plain_row, read_model_rows

CHURN_TABLES = (
    ("churn_gap_contributions", "person_id, grp, days"),
    ("churn_return_counts", "bucket, length, n"),
    ("churn_open_gaps", "bucket, since, n"),
)


def archive_by_route(conn: psycopg.Connection[Any], envelopes: list[dict[str, Any]]) -> None:
    """Archive envelopes under their routing key (as the ingest publishes them); one that
    names no key goes under ``none``."""
    records = []
    for offset, envelope in enumerate(envelopes):
        route = ROUTES.get(envelope["type"])
        key = str(envelope["data"].get(route.key_field, "none")) if route else "none"
        record = to_archive_record("t", 0, offset, key.encode(), orjson.dumps(envelope))
        assert isinstance(record, ArchiveRecord)
        records.append(record)
    archive.append(conn, records)


def churn_rows(database_url: str) -> list[list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return [
            [tuple(r) for r in conn.execute(f"SELECT {cols} FROM {t} ORDER BY 1, 2").fetchall()]
            for t, cols in CHURN_TABLES
        ]


def test_a_tiny_memory_bound_replays_in_parts_equal_to_one_part_and_the_pure_fold(
    database_url: str,
) -> None:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(7, 40, source="urn:test:replay-parts", end=end)
    rng = random.Random(5)
    deliveries = events + rng.sample(events, 30)
    rng.shuffle(deliveries)  # out of order, duplicates too (the archive keeps one of each)
    # the latest event of a known type cannot be parsed (no device id): dead-lettered, so the
    # fold's latest time (the watermark) is not the planned one and the parts are re-derived
    broken = dict(events[-1], id="broken-latest", type="device.used", data={"feature": "x"})
    broken["time"] = (end + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    with psycopg.connect(database_url) as conn:
        archive_by_route(conn, [*deliveries, broken])

    whole = replay(database_url)
    persons = read_model_rows(database_url, "persons", PERSON_COLUMNS)
    devices = read_model_rows(database_url, "devices", DEVICE_COLUMNS)
    churn = churn_rows(database_url)
    assert whole.parts == 1 and whole.dead_lettered == 1

    parted = replay(database_url, memory_mb=0.04)  # ~100 events a part
    assert parted.parts >= 3
    assert parted == type(whole)(**{**_fields(whole), "parts": parted.parts})
    assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == persons
    assert read_model_rows(database_url, "devices", DEVICE_COLUMNS) == devices
    assert churn_rows(database_url) == churn

    parsed = [parse_event(e) for e in events]
    world = fold(parsed)
    as_of = max(e.at for e in parsed) - DEFAULT_ALLOWED_LATENESS
    assert whole.as_of == as_of and whole.events == len(events)
    aliases = aliases_by_person(world)
    want = sorted(person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items())
    assert persons == [plain_row(r) for r in want]
    assert devices == sorted(device_row(device_view_of(s)) for s in world.devices.values())
    assert len(persons) > 20 and churn[0]


def _fields(result: Any) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__dataclass_fields__}
