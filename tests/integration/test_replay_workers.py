"""`tenure replay` read by worker processes over seq ranges equals the replay in one process
and the pure fold of the archive (Postgres only: the archive is filled directly)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg

from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.world import fold, views
from tenure.projection.replay import aliases_by_person, replay
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS, device_row, person_row
from tests.factories import scenario
from tests.integration.pipeline import archive_events, plain_row, read_model_rows


def test_replay_in_worker_processes_equals_one_process_and_the_pure_fold(
    database_url: str,
) -> None:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(5, 40, source="urn:test:replay-workers", end=end)
    rng = random.Random(9)
    deliveries = events + rng.sample(events, 30)
    rng.shuffle(deliveries)  # out of order, duplicates too (the archive keeps one of each)
    with psycopg.connect(database_url) as conn:
        archive_events(conn, deliveries)

    one = replay(database_url, workers=1)
    persons_one = read_model_rows(database_url, "persons", PERSON_COLUMNS)
    devices_one = read_model_rows(database_url, "devices", DEVICE_COLUMNS)
    three = replay(database_url, workers=3)  # three seq ranges, three processes
    assert three == one
    assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == persons_one
    assert read_model_rows(database_url, "devices", DEVICE_COLUMNS) == devices_one

    parsed = [parse_event(e) for e in events]
    world = fold(parsed)
    as_of = max(e.at for e in parsed) - DEFAULT_ALLOWED_LATENESS
    assert one.as_of == as_of and one.events == len(events) and one.dead_lettered == 0
    aliases = aliases_by_person(world)
    want = sorted(person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items())
    assert persons_one == [plain_row(r) for r in want]
    assert devices_one == sorted(device_row(device_view_of(s)) for s in world.devices.values())
    assert len(persons_one) > 20
