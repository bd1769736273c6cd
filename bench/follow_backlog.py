"""When every derived person has also been *followed* (published and aggregated): the
benchmarks wait for the follow stage's backlog (``tenure.storage.follow_backlog``, the
counts behind the follower's ``tenure_projector_follow_backlog`` gauge) to be empty.
"""

from __future__ import annotations

import time

import psycopg

from tenure.storage import follow_backlog as follow_counts
from tenure.storage.follow_backlog import FOLLOW_PARTS

__all__ = ["FOLLOW_PARTS", "follow_backlog", "wait_followed"]

POLL_S = 1.0


def follow_backlog(database_url: str) -> dict[str, int]:
    """What the follow stage has left, by part (:data:`FOLLOW_PARTS`)."""
    with psycopg.connect(database_url) as conn:
        return follow_counts.follow_backlog(conn)


def wait_followed(database_url: str, timeout_s: float) -> tuple[dict[str, int], float]:
    """Wait until the follow stage has nothing left; return what it had left when called
    and the seconds it took (:class:`TimeoutError` after ``timeout_s``)."""
    started = time.monotonic()
    first = left = follow_backlog(database_url)
    while any(left.values()):
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"the follow stage still has {left} after {timeout_s:.0f} s")
        time.sleep(POLL_S)
        left = follow_backlog(database_url)
    return first, time.monotonic() - started
