"""Following persons with ``GET /v1/persons?updated_since=``: every change at least once, in
change order, a late-committing writer never skipped, removals and erasures by token
(Postgres only)."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from services.query.app import create_app
from tenure.privacy.boundary import pseudonymiser_for
from tenure.projection import erasure
from tenure.projection.replay import replay
from tenure.storage import person_changes, person_reads
from tenure.storage.connection import read_only_snapshot
from tenure.storage.tokens import create_token
from tests.factories import scenario
from tests.integration.conftest import ServerThread
from tests.integration.horizon import wait_for_the_horizon
from tests.integration.pipeline import archive_events

START = person_changes.START


@pytest.fixture
def replayed(pool, database_url: str) -> str:
    events = scenario(6, 12, source="urn:tenure:changes-test", end=datetime.now(UTC))
    with pool.connection() as conn, conn.transaction():
        archive_events(conn, events)
    replay(database_url, allowed_lateness=timedelta(0))
    wait_for_the_horizon(database_url)
    return database_url


def page(conn: psycopg.Connection[Any], cursor: person_changes.ChangeCursor, limit: int = 4):
    with read_only_snapshot(conn):
        return person_reads.persons_changed(conn, cursor, limit)


def stored(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT person_id, tenure_days FROM persons").fetchall())


def test_a_writer_that_commits_late_is_not_skipped(replayed: str) -> None:
    with psycopg.connect(replayed, autocommit=True) as reader:
        cursor = START
        while (next_page := page(reader, cursor)).persons:
            cursor = next_page.next
        first, second = sorted(stored(replayed))[:2]
        with psycopg.connect(replayed) as early, psycopg.connect(replayed) as late:
            early.execute("UPDATE persons SET tenure_days = 1000 WHERE person_id = %s", (first,))
            late.execute("UPDATE persons SET tenure_days = 2000 WHERE person_id = %s", (second,))
            late.commit()  # a larger xid commits first
            assert page(reader, cursor).persons == []  # held back below the early writer
            early.commit()
        wait_for_the_horizon(replayed)
        seen = page(reader, cursor)
    assert [(r["person_id"], r["tenure_days"]) for r in seen.persons] == [
        (first, 1000),
        (second, 2000),
    ]


def _past_every_change(conn: psycopg.Connection[Any]) -> bool:
    """Whether the horizon a page reads below has passed every stored change. Any transaction
    with an xid anywhere in the cluster holds it back (an autovacuum ANALYZE writing
    ``pg_statistic`` does), and a page then comes back empty although changes remain: the
    follower waits for it, as a real one does on its next poll."""
    row = conn.execute(
        "SELECT pg_snapshot_xmin(pg_current_snapshot()) > max(changed_xid) FROM persons"
    ).fetchone()
    return row is not None and bool(row[0])


def test_a_follower_through_concurrent_writers_loses_no_change(replayed: str) -> None:
    ids = sorted(stored(replayed))

    def write(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(replayed) as conn:
            for _ in range(25):
                chosen = sorted(rng.sample(ids, rng.randint(1, 3)))
                conn.execute(
                    "UPDATE persons SET tenure_days = tenure_days + 1 WHERE person_id = ANY(%s)",
                    (chosen,),
                )
                conn.commit()

    follower: dict[str, int] = {}
    seen_order: list[person_changes.ChangeCursor] = []
    writers = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for thread in writers:
        thread.start()
    cursor = START
    give_up_at = time.monotonic() + 60.0
    with psycopg.connect(replayed, autocommit=True) as reader:
        while True:
            finished = not any(t.is_alive() for t in writers)
            got = page(reader, cursor)
            for row in got.persons:
                follower[row["person_id"]] = row["tenure_days"]
            seen_order.append(got.next)
            cursor = got.next
            if finished and not got.persons and not got.removed:
                if _past_every_change(reader) or time.monotonic() > give_up_at:
                    break
            elif not finished:
                give_up_at = time.monotonic() + 60.0  # the horizon may lag, not forever
    assert follower == stored(replayed)  # the latest state of every person, none lost
    assert seen_order == sorted(seen_order)  # cursors only move forward


def test_the_api_follows_changes_and_erasures_by_token(pool, replayed: str) -> None:
    with pool.connection() as conn, conn.transaction():
        read = create_token(conn, "bi", scope="read")
    with ServerThread(create_app(pool=pool)) as server:

        def follow(since: str) -> tuple[list[dict[str, Any]], list[str], str]:
            persons: list[dict[str, Any]] = []
            removed: list[str] = []
            while True:
                body = httpx.get(
                    f"{server.url}/v1/persons",
                    params={"updated_since": since, "limit": 3},
                    headers={"Authorization": f"Bearer {read}"},
                    timeout=10,
                ).json()
                persons += body["persons"]
                removed += body["removed"]
                if body["next"] == since:
                    return persons, removed, since
                since = body["next"]

        everyone, removed, cursor = follow("0")
        assert sorted(p["person_id"] for p in everyone) == sorted(stored(replayed))
        assert all(p["person_token"].startswith("~p:") and "churn_risk" in p for p in everyone)
        victim = everyone[0]
        with pool.connection() as conn:
            erasure.purge(conn, pseudonymiser_for(conn), {victim["person_id"]: datetime.now(UTC)})
        changed, removed, _ = follow(cursor)
        refused = httpx.get(
            f"{server.url}/v1/persons",
            params={"updated_since": "0", "segment": "user_only"},
            headers={"Authorization": f"Bearer {read}"},
            timeout=10,
        )
    assert victim["person_token"] in removed
    assert victim["person_id"] not in str(removed) + str([p["person_id"] for p in changed])
    assert refused.status_code == 422
