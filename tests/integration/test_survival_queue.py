"""The aggregates stage's queue (``survival_dirty``, migration 0025) on real Postgres: a derive
pass that changes a person never waits for a drain that holds the person's earlier mark.

The persons upsert's trigger queues the person; with a primary key on the queue, that insert
waited for an open drain transaction that had claimed the same person (the drain holds the
deleted row until it commits), so derive passes stood still behind the aggregates stage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tenure.domain.events import DeviceActivated, DeviceUsed, DomainEvent
from tenure.projection.apply import apply_events
from tenure.projection.derive import derive_pass
from tenure.storage import derive_queue, survival_aggregates

LATENESS = timedelta(hours=1)
END = datetime(2026, 3, 1, tzinfo=UTC)
PARTITION = ("tenure.test.v1", 0)


def _project(conn: psycopg.Connection[Any], events: list[DomainEvent]) -> int:
    with conn.transaction():
        apply_events(conn, events, {PARTITION: END})
    return derive_pass(conn, allowed_lateness=LATENESS).persons


def _marks(conn: psycopg.Connection[Any]) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT person_id FROM survival_dirty ORDER BY seq")]


def test_a_derive_pass_does_not_wait_for_a_drain_holding_the_person(database_url: str) -> None:
    activated = DeviceActivated(("t", "e1"), END - timedelta(days=3), "dev-x", "person-x", "w")
    used = DeviceUsed(("t", "e2"), END - timedelta(days=2), "dev-x", "person-x")
    with psycopg.connect(database_url, autocommit=True) as deriver:
        assert _project(deriver, [activated]) == 1
        assert _marks(deriver) == ["person-x"]
        with psycopg.connect(database_url) as drain:  # a drain's claim, not yet committed
            claimed = derive_queue.claim_oldest(drain, "survival_dirty", "person_id", 10)
            assert claimed == ["person-x"]
            deriver.execute("SET lock_timeout = '5s'")  # waiting would fail the pass
            assert _project(deriver, [used]) == 1  # last engagement moved: queued again
            drain.commit()
        assert _marks(deriver) == ["person-x"]  # the new mark, not the claimed one
        assert survival_aggregates.drain(deriver) == 1
        assert _marks(deriver) == []


def test_two_drains_never_take_one_person_and_end_equal_to_a_rebuild(database_url: str) -> None:
    """The claim's key lock is the only lock a drain takes on its persons: another drain
    skips a person one holds (it does not wait for it), and takes it once that one ends.
    (Two drains adding to the same aggregate cell do wait for each other: counters.)"""
    events: list[DomainEvent] = [
        DeviceActivated(("t", "e1"), END - timedelta(days=3), "dev-x", "person-x", "w"),
        DeviceActivated(("t", "e2"), END - timedelta(days=3), "dev-y", "person-y", "w"),
    ]
    with (
        psycopg.connect(database_url, autocommit=True) as deriver,
        psycopg.connect(database_url) as first,
        psycopg.connect(database_url) as second,
    ):
        assert _project(deriver, events) == 2
        second.execute("SET lock_timeout = '5s'")  # waiting for ``first`` fails the test
        second.commit()
        claimed = derive_queue.claim_oldest(first, "survival_dirty", "person_id", 1)
        assert claimed == ["person-x"]  # a drain holding person-x, mid-transaction
        assert survival_aggregates.drain(second) == 1  # person-y only, without waiting
        first.rollback()  # that drain fails: person-x's marks are queued again
        assert survival_aggregates.drain(second) == 1  # person-x
        assert _marks(deriver) == []
        drained = survival_aggregates.read_aggregates(deriver)
        assert sum(drained.values()) > 0
        with deriver.transaction():
            survival_aggregates.rebuild(deriver, END - LATENESS)
            assert survival_aggregates.read_aggregates(deriver) == drained
