"""What the follow stage still has to do after the derive stage: the benchmarks' measure of
when every derived person has also been *followed* (published and aggregated).

The follow stage (``tenure worker projector --stages follow``) relays the transitions
outbox and the persons change feed to the broker, runs the audience stage over the same
feed, and drains the aggregates stage's queues. Each of these keeps a position or a queue
in Postgres; a count of what lies beyond each position, or is queued, is what is left.
"""

from __future__ import annotations

import time

import psycopg

FOLLOW_PARTS: tuple[str, ...] = (
    "transitions_unpublished",
    "persons_changes_unrelayed",
    "audience_changes_unevaluated",
    "survival_marks",
    "churn_marks",
)
"""What :func:`follow_backlog` counts, in its order."""

_FOLLOW_BACKLOG_SQL = """
SELECT (SELECT count(*) FROM lifecycle_transitions t, transitions_relay_position r
        WHERE (t.written_xid, t.seq) > (r.xid, r.seq)),
       (SELECT count(*) FROM persons p, person_topic_position r
        WHERE (p.changed_xid, p.person_id) > (r.xid, r.person_id))
       + (SELECT count(*) FROM person_removals p, person_topic_position r
          WHERE (p.changed_xid, p.person_id) > (r.xid, r.person_id)),
       (SELECT count(*) FROM persons p, audience_positions a
        WHERE (p.changed_xid, p.person_id) > (a.xid, a.person_id)),
       (SELECT count(*) FROM survival_dirty),
       (SELECT count(*) FROM churn_pending)
"""
"""Transitions past the relay's position, persons rows changed (and removed) past the
persons relay's position, persons rows changed past each audience's position (one count
per audience), and the aggregates stage's queue marks. A stage that is switched off has no
position row and counts 0."""

POLL_S = 1.0


def follow_backlog(database_url: str) -> dict[str, int]:
    """What the follow stage has left, by part (:data:`FOLLOW_PARTS`)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(_FOLLOW_BACKLOG_SQL).fetchone()
    return dict(zip(FOLLOW_PARTS, (int(n) for n in row or (0,) * len(FOLLOW_PARTS)), strict=True))


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
