"""The keys the archive's writer records beside its rows (migration 0028) give the replay's
plan exactly the components the payloads give, also when part of the archive was written
before they were recorded (Postgres only: the archive is filled directly)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tenure.projection.person_refs import PersonRefs
from tenure.projection.replay import replay
from tenure.projection.replay_plan import Components, plan, plan_named, plan_range
from tenure.storage import archive
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS
from tests.factories import scenario
from tests.integration.pipeline import read_model_rows
from tests.integration.test_replay_parts import archive_by_route, churn_rows


def _record_key_groups(components: Components, keys: list[str]) -> set[tuple[frozenset[str], int]]:
    """The record keys grouped by component, with each component's events."""
    groups: dict[int, set[str]] = {}
    for key in keys:
        groups.setdefault(components.find(hash("k" + key)), set()).add(key)
    return {(frozenset(g), components.events.get(root, 0)) for root, g in groups.items()}


def _events(seed: int) -> list[dict[str, Any]]:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(seed, 40, source=f"urn:test:archive-keys-{seed}", end=end)
    rng = random.Random(seed)
    deliveries = events + rng.sample(events, 30)
    rng.shuffle(deliveries)  # out of order, duplicates too (the archive keeps one of each)
    return deliveries


def _keys(conn: psycopg.Connection[Any]) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT DISTINCT record_key FROM event_archive")]


def test_the_plan_from_the_recorded_keys_equals_the_plan_from_the_payloads(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        archive_by_route(conn, _events(11))
        conn.commit()
        total, first, last = archive.bounds(conn)
        named = plan_named(conn, first, last, PersonRefs())
        read = plan_range(conn, first, last, PersonRefs())
        keys = _keys(conn)
        names = conn.execute("SELECT count(*) FROM archive_key_names").fetchone()
        # one row per distinct (record key, key named), far fewer than the events
        assert names is not None and 0 < names[0] < total / 3
    assert named.rows == read.rows == total and named.unnamed == 0
    assert named.latest == read.latest is not None
    assert _record_key_groups(named.components, keys) == _record_key_groups(read.components, keys)
    assert len(_record_key_groups(named.components, keys)) > 5  # independent persons


def test_rows_archived_before_the_keys_were_recorded_are_planned_from_their_payloads(
    database_url: str,
) -> None:
    events = _events(12)
    half = len(events) // 2
    with psycopg.connect(database_url) as conn:
        archive_by_route(conn, events[:half])
        # as if archived before migration 0028: no keys recorded, rows not marked
        conn.execute("UPDATE event_archive SET keys_named = NULL")
        conn.execute("TRUNCATE archive_key_names, archive_latest")
        archive_by_route(conn, events[half:])
        conn.commit()
        total, first, last = archive.bounds(conn)
        named = plan_named(conn, first, last, PersonRefs())
        assert 0 < named.unnamed < total and named.rows + named.unnamed == total
        mixed = plan(conn, first, last, 100, PersonRefs())
        read = plan_range(conn, first, last, PersonRefs())
        keys = _keys(conn)
    assert mixed.rows == read.rows == total and mixed.latest == read.latest
    assert _record_key_groups(mixed.components, keys) == _record_key_groups(read.components, keys)

    alone = replay(database_url, workers=1)  # one part: no plan, every payload read
    persons = read_model_rows(database_url, "persons", PERSON_COLUMNS)
    devices = read_model_rows(database_url, "devices", DEVICE_COLUMNS)
    churn = churn_rows(database_url)
    for run in (
        replay(database_url, workers=3),
        replay(database_url, workers=1, memory_mb=0.04),
    ):
        assert run.parts >= 3 and (run.events, run.persons) == (alone.events, alone.persons)
        assert read_model_rows(database_url, "persons", PERSON_COLUMNS) == persons
        assert read_model_rows(database_url, "devices", DEVICE_COLUMNS) == devices
        assert churn_rows(database_url) == churn
