"""Waiting until the change feeds' horizon has passed every write so far.

The followers (the persons feed, the audience members feed, the transitions outbox) read
only changes of transactions older than the oldest one still running (``pg_snapshot_xmin``).
Any transaction with an xid anywhere in the cluster holds that horizon back (an autovacuum
ANALYZE writing ``pg_statistic`` does), so a page read right after a commit can come back
empty although the change is there: a real follower finds it on its next poll, and a test
waits for the horizon first.
"""

from __future__ import annotations

import time

import psycopg


def wait_for_the_horizon(database_url: str, timeout_s: float = 60.0) -> None:
    """Return once every transaction that started before this call has ended (the caller
    must hold no open transaction with writes of its own)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        now = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert now is not None
        deadline = time.monotonic() + timeout_s
        while True:
            row = conn.execute(
                "SELECT pg_snapshot_xmin(pg_current_snapshot()) > %s::text::xid8", (now[0],)
            ).fetchone()
            if row is not None and row[0]:
                return
            assert time.monotonic() < deadline, f"a transaction older than xid {now[0]} still runs"
            time.sleep(0.05)
