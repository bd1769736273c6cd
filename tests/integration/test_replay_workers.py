"""`tenure replay` in worker processes (each folds, assembles and derives whole parts of
independent persons and sends back their rows) equals the replay in one process and the pure
fold of the archive; a worker that fails fails the replay and swaps nothing in (Postgres
only: the archive is filled directly)."""

from __future__ import annotations

import os
import random
import signal
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.world import fold, views
from tenure.projection import replay_workers
from tenure.projection.replay import aliases_by_person, replay
from tenure.projection.replay_workers import ReplayWorkerFailed
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS, device_row, person_row
from tests.factories import scenario
from tests.integration.pipeline import archive_events, plain_row, read_model_rows


def _archive(database_url: str, seed: int, source: str) -> list[dict[str, object]]:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(seed, 40, source=source, end=end)
    rng = random.Random(9)
    deliveries = events + rng.sample(events, 30)
    rng.shuffle(deliveries)  # out of order, duplicates too (the archive keeps one of each)
    with psycopg.connect(database_url) as conn:
        archive_events(conn, deliveries, keyed=True)
    return events


def _churn_model(database_url: str) -> tuple[list[tuple[object, ...]], ...]:
    """Every row of the churn model's counts and contributions."""
    with psycopg.connect(database_url) as conn:
        return tuple(
            conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("churn_return_counts", "churn_open_gaps", "churn_gap_contributions")
        )


def test_replay_in_worker_processes_equals_one_process_and_the_pure_fold(
    database_url: str,
) -> None:
    events = _archive(database_url, 5, "urn:test:replay-workers")

    one = replay(database_url, workers=1)
    persons_one = read_model_rows(database_url, "persons", PERSON_COLUMNS)
    devices_one = read_model_rows(database_url, "devices", DEVICE_COLUMNS)
    churn_one = _churn_model(database_url)
    three = replay(database_url, workers=3)  # parts of independent persons, three processes
    assert (three.workers, one.workers, one.parts) == (3, 1, 1)
    assert three.parts >= 3
    assert three.events == one.events and three.as_of == one.as_of
    assert (three.persons, three.devices, three.dead_lettered) == (
        one.persons,
        one.devices,
        one.dead_lettered,
    )
    assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == persons_one
    assert read_model_rows(database_url, "devices", DEVICE_COLUMNS) == devices_one
    assert _churn_model(database_url) == churn_one  # the workers filed it, the same counts
    assert churn_one[0] and churn_one[1] and churn_one[2]

    parsed = [parse_event(e) for e in events]
    world = fold(parsed)
    as_of = max(e.at for e in parsed) - DEFAULT_ALLOWED_LATENESS
    assert one.as_of == as_of and one.events == len(events) and one.dead_lettered == 0
    aliases = aliases_by_person(world)
    want = sorted(person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items())
    assert persons_one == [plain_row(r) for r in want]
    assert devices_one == sorted(device_row(device_view_of(s)) for s in world.devices.values())
    assert len(persons_one) > 20


def test_a_worker_that_fails_or_dies_fails_the_replay_and_swaps_nothing_in(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _archive(database_url, 3, "urn:test:replay-worker-fails")
    replay(database_url, workers=1)
    persons = read_model_rows(database_url, "persons", PERSON_COLUMNS)
    with psycopg.connect(database_url) as conn:  # a change the failed replays must not undo
        conn.execute("UPDATE persons SET tier = 'marked'")
    marked = read_model_rows(database_url, "persons", PERSON_COLUMNS)
    assert marked != persons

    real = replay_workers.part_rows
    calls = {"n": 0}

    def fails_on_second_part(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("a part that cannot be derived")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(replay_workers, "part_rows", fails_on_second_part)
    with pytest.raises(ReplayWorkerFailed, match="a part that cannot be derived"):
        replay(database_url, workers=2)
    assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == marked

    def dies(*args: object, **kwargs: object) -> object:
        os.kill(os.getpid(), signal.SIGKILL)  # no traceback, no message: only an exit code
        raise AssertionError("unreachable")

    monkeypatch.setattr(replay_workers, "part_rows", dies)
    with pytest.raises(ReplayWorkerFailed, match="exited with code -9"):
        replay(database_url, workers=2)
    assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == marked
