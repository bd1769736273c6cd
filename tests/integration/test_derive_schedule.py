"""The derive stage on real Postgres: fair (oldest-queued first) and time-driven by schedule.

- A key queued first is derived first, whatever its id sorts as; a steady stream of new
  early-sorting keys cannot starve an old late-sorting key.
- Advancing the watermark re-derives exactly the persons whose ``next_change_at`` came due,
  and the read model then equals a full re-derive (the pure fold) at the new as-of.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tenure.domain.events import DeviceActivated, DomainEvent, parse_event
from tenure.domain.schedule import next_change_at
from tenure.domain.view import DEFAULT_CONFIG, person_view_at
from tenure.domain.world import fold, views
from tenure.projection.apply import apply_events
from tenure.projection.derive import derive_pass, queue_due_persons, queued_keys
from tenure.projection.replay import aliases_by_person
from tenure.storage import derive_queue, person_reads
from tenure.storage.progress import record_progress
from tenure.storage.read_models import PERSON_COLUMNS, person_as_of, person_row
from tests.factories import scenario
from tests.integration.pipeline import plain_row

LATENESS = timedelta(hours=1)
END = datetime(2026, 3, 1, tzinfo=UTC)
PARTITION = ("tenure.test.v1", 0)


def _activation(n: int, person: str) -> DomainEvent:
    return DeviceActivated(("test", f"e{n}"), END - timedelta(days=2), f"dev-{person}", person, "w")


def _queue(conn: psycopg.Connection[Any], events: list[DomainEvent]) -> None:
    with conn.transaction():
        apply_events(conn, events, {PARTITION: END})


def _derived(conn: psycopg.Connection[Any]) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT person_id FROM persons")}


def test_the_key_queued_first_is_derived_first_whatever_it_sorts_as(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        _queue(conn, [_activation(0, "zzz-late")])
        _queue(conn, [_activation(n, f"aaa-{n:03d}") for n in range(1, 6)])
        assert queued_keys(conn, 1) == [("person", "zzz-late"), ("device", "dev-zzz-late")]
        result = derive_pass(conn, allowed_lateness=LATENESS, limit=1)
        assert result.persons == 1
        assert _derived(conn) == {"zzz-late"}


def test_a_stream_of_early_keys_cannot_starve_an_old_late_key(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        _queue(conn, [_activation(n, f"b-{n:03d}") for n in range(3)])  # backlog in front
        _queue(conn, [_activation(3, "zzz-late")])
        passes = 0
        while "zzz-late" not in _derived(conn):
            passes += 1
            assert passes <= 4, "the late key waited longer than the backlog in front of it"
            # Each pass, two new keys that sort before everything else arrive first.
            fresh = [
                _activation(100 + 2 * passes + i, f"a-{1000 - 2 * passes - i:04d}") for i in (0, 1)
            ]
            _queue(conn, fresh)
            derive_pass(conn, allowed_lateness=LATENESS, limit=1)
        assert passes == 4  # exactly the three keys queued before it, then it
        assert {"b-000", "b-001", "b-002"} <= _derived(conn)


def test_a_claim_skips_the_keys_another_pass_holds(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as first:
        for n in range(4):  # a batch's marks have no order among themselves: one per batch
            _queue(first, [_activation(n, f"p-{n}")])
        with psycopg.connect(database_url) as second, first.transaction():
            held = derive_queue.claim(first, "person", 2)
            assert held == ["p-0", "p-1"]
            assert derive_queue.claim(second, "person", 2) == ["p-2", "p-3"]
            second.rollback()


def _persons(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    columns = ", ".join((*PERSON_COLUMNS, "next_change_at"))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {columns} FROM persons").fetchall()
    return {r["person_id"]: r for r in rows}


def _derive_all(conn: psycopg.Connection[Any]) -> int:
    total = 0
    while (result := derive_pass(conn, allowed_lateness=LATENESS, limit=50)).persons:
        total += result.persons
    return total


def test_a_watermark_advance_re_derives_exactly_the_due_rows_and_equals_a_full_derive(
    database_url: str,
) -> None:
    events = [parse_event(e) for e in scenario(11, 60, source="urn:test:schedule", end=END)]
    world = fold(events)
    first = max(e.at for e in events)
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            apply_events(conn, events, {PARTITION: first})
        _derive_all(conn)
        before = _persons(conn)
        assert len(before) > 40
        for day in range(1, 40):  # one day at a time, as a watermark moves
            moved = first + timedelta(days=day)
            as_of = moved - LATENESS
            due = {p for p, r in before.items() if r["next_change_at"] is not None
                   and r["next_change_at"] <= as_of}  # fmt: skip
            with conn.transaction():
                record_progress(conn, {PARTITION: moved})
                assert queue_due_persons(conn, LATENESS) == len(due)
            assert {k for _, k in queued_keys(conn, 10_000)} == due
            assert _derive_all(conn) == len(due)
            after = _persons(conn)
            assert {p for p in after if after[p]["as_of"] != before[p]["as_of"]} == due
            _assert_equals_the_fold_at(world, after, as_of)
            before = after
        # The query API reads every row as of the live projection's instant.
        conn.execute("UPDATE survival_state SET as_of = %s", (as_of,))
        aliases = aliases_by_person(world)
        for person_id, view in views(world, as_of).items():
            got = person_reads.person(conn, person_id)
            assert got is not None and "next_change_at" not in got
            assert plain_row(tuple(got[c] for c in PERSON_COLUMNS)) == plain_row(
                person_row(view, aliases.get(person_id, ()))
            )
        transitions = conn.execute(
            "SELECT count(*) FROM lifecycle_transitions WHERE kind = 'stage' AND as_of > %s",
            (first - LATENESS,),
        ).fetchone()
        assert transitions is not None and transitions[0] > 0  # time moved stages


def _assert_equals_the_fold_at(
    world: Any, stored: dict[str, dict[str, Any]], as_of: datetime
) -> None:
    """Every stored row, read as of ``as_of``, equals the pure derive at ``as_of``; every
    schedule equals the pure schedule of the instant it was derived at."""
    aliases = aliases_by_person(world)
    want = views(world, as_of)
    assert set(stored) == set(want)
    for person_id, row in stored.items():
        read = person_as_of(row, as_of)
        assert plain_row(tuple(read[c] for c in PERSON_COLUMNS)) == plain_row(
            person_row(want[person_id], aliases.get(person_id, ()))
        ), person_id
        state = world.persons[person_id]
        then = person_view_at(state, row["as_of"], DEFAULT_CONFIG)
        assert row["next_change_at"] == next_change_at(state, then, DEFAULT_CONFIG)
