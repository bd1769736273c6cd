"""The projector's derive passes adapt to the backlog: small first, doubling while full.

A slice's first pass claims ``FIRST_PASS`` keys, so a fact queued behind a short backlog is
derived by a quick pass; each pass that comes back full doubles the next, up to the
projector's ``derive_chunk``, so a long backlog is drained in large passes. A slice that
runs out of budget while its passes come back full hands its next pass size to the next
slice; one that finds its pass short starts the next small. An explicit ``chunk`` fixes the
pass size.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from tenure.domain.events import DeviceActivated, DomainEvent
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.apply import apply_events
from tenure.projection.derive import DeriveResult
from tenure.projection.projector import FIRST_PASS, Projector
from tenure.runtime.broker import LocalBroker

pytestmark = pytest.mark.kafka

LATENESS = timedelta(hours=1)
END = datetime(2026, 3, 1, tzinfo=UTC)
PARTITION = ("tenure.test.v1", 0)


class CountingPasses(Projector):
    """The real projector, noting the limit of each derive pass it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: list[int] = []

    def _derive_pass(self, limit: int) -> DeriveResult:
        self.limits.append(limit)
        return super()._derive_pass(limit)


def _queue(database_url: str, people: int, first: int = 0) -> None:
    events: list[DomainEvent] = [
        DeviceActivated(("test", f"e{n}"), END - timedelta(days=2), f"dev-{n}", f"p-{n:04d}", "w")
        for n in range(first, first + people)
    ]
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        apply_events(conn, events, {PARTITION: END})


def _projector(broker: LocalBroker, pool: ConnectionPool, **kwargs: Any) -> CountingPasses:
    return CountingPasses(
        pool, EventPublisher(broker.bootstrap), allowed_lateness=LATENESS, **kwargs
    )


def test_passes_start_small_and_double_while_they_come_back_full(
    broker: LocalBroker, pool: ConnectionPool, database_url: str
) -> None:
    _queue(database_url, 300)
    projector = _projector(broker, pool, derive_chunk=200, live_aggregates=False)
    try:
        result = projector.derive(budget_s=600)
    finally:
        projector.publisher.close()
    assert FIRST_PASS == 64
    # 64 + 128 full, then 200 (the chunk) finds the last 108, then an empty pass ends it
    assert projector.limits == [64, 128, 200, 200]
    assert result.persons == 300 and projector.backlog() == (0, 0)


def test_a_slice_out_of_budget_runs_one_small_pass_and_a_fixed_chunk_stays_fixed(
    broker: LocalBroker, pool: ConnectionPool, database_url: str
) -> None:
    _queue(database_url, 100)
    projector = _projector(broker, pool, live_aggregates=False)
    try:
        first = projector.derive(budget_s=0)  # the budget is spent after one pass
        fixed = projector.derive(budget_s=600, chunk=10)
    finally:
        projector.publisher.close()
    assert first.persons == FIRST_PASS and projector.limits[0] == FIRST_PASS
    assert fixed.persons == 100 - FIRST_PASS
    assert set(projector.limits[1:]) == {10}


def test_a_slice_out_of_budget_with_full_passes_hands_its_pass_size_to_the_next(
    broker: LocalBroker, pool: ConnectionPool, database_url: str
) -> None:
    """A long backlog is not started at ``FIRST_PASS`` again every slice (each pass has a
    fixed cost: its round trips); once a pass comes back short, slices start small again."""
    _queue(database_url, 300)
    projector = _projector(broker, pool, derive_chunk=200, live_aggregates=False)
    try:
        projector.derive(budget_s=0)  # one pass of 64, full: the next would be 128
        projector.derive(budget_s=0)  # starts at 128, full: the next would be 200
        assert projector.limits == [64, 128] and projector.carried_limit == 200
        last = projector.derive(budget_s=600)  # 200 finds the last 108; an empty pass
        assert projector.limits[2:] == [200, 200] and projector.carried_limit is None
        assert last.persons == 300 - 64 - 128
        _queue(database_url, 10, first=300)
        projector.derive(budget_s=600)
    finally:
        projector.publisher.close()
    assert projector.limits[4] == FIRST_PASS  # a short queue: a small, quick pass again
    assert projector.backlog() == (0, 0)


def test_two_derive_threads_of_one_projector_share_the_queue_without_overlap(
    broker: LocalBroker, pool: ConnectionPool, database_url: str
) -> None:
    """The worker runs two derive tasks: their passes claim disjoint keys, every key is
    derived once and the totals add up."""
    from concurrent.futures import ThreadPoolExecutor

    _queue(database_url, 400)
    projector = _projector(broker, pool, live_aggregates=False)
    try:
        with ThreadPoolExecutor(max_workers=2) as threads:
            results = list(threads.map(lambda _: projector.derive(budget_s=600), (0, 1)))
    finally:
        projector.publisher.close()
    assert sum(r.persons for r in results) == 400 == projector.totals.persons_derived
    assert projector.backlog() == (0, 0)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM persons").fetchone()
    assert row is not None and row[0] == 400
