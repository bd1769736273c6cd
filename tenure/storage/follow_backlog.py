"""What the follow stage still has to do: the work past each of its positions and in its
queues.

The follow stage (``tenure worker projector --stages follow``) relays the transitions
outbox and the persons change feed to the broker, runs the audience stage over the same
feed, and drains the aggregates stage's queues. Each keeps a position or a queue in
Postgres, so what lies past each position, or is queued, is what it has left: the
follower's ``tenure_projector_follow_backlog`` gauge and the benchmarks' measure of when
every derived person has also been published and aggregated (``bench/follow_backlog.py``).
"""

from __future__ import annotations

from tenure.storage.connection import Conn

FOLLOW_PARTS: tuple[str, ...] = (
    "transitions_unpublished",
    "persons_changes_unrelayed",
    "audience_changes_unevaluated",
    "survival_marks",
    "churn_marks",
)
"""What :func:`follow_backlog` counts, in its order (the gauge's ``part`` label values)."""

_FOLLOW_BACKLOG_SQL = """
SELECT (SELECT count(*) FROM lifecycle_transitions t, transitions_relay_position r
        WHERE (t.written_xid, t.seq) > (r.xid, r.seq)),
       (SELECT count(*) FROM persons p, person_topic_position r
        WHERE (p.changed_xid, p.person_id) > (r.xid, r.person_id))
       + (SELECT count(*) FROM person_removals p, person_topic_position r
          WHERE (p.changed_xid, p.person_id) > (r.xid, r.person_id)),
       (SELECT count(*) FROM persons p,
               (SELECT xid, person_id FROM audience_positions
                ORDER BY xid, person_id LIMIT 1) a
        WHERE (p.changed_xid, p.person_id) > (a.xid, a.person_id)),
       (SELECT count(*) FROM survival_dirty),
       (SELECT count(*) FROM churn_pending)
"""
"""Transitions past the relay's position, persons rows changed (and removed) past the
persons relay's position, persons rows changed past the oldest audience position (what the
audience stage, which reads the feed once for every audience, has still to read: all of it
for a new audience), and the aggregates stage's queue marks. A stage that is switched off has no
position row and counts 0. Each count is a range of an index (``*_by_change``,
``lifecycle_transitions_in_relay_order``) or a whole queue, so it costs what is left, not
what was ever written."""


AUDIENCES_PART = "audience_changes_unevaluated"


def follow_backlog(conn: Conn, *, audiences: bool = True) -> dict[str, int]:
    """What the follow stage has left, by part (:data:`FOLLOW_PARTS`). ``audiences=False``
    (``TENURE_AUDIENCES=off``: no audience stage runs) leaves out :data:`AUDIENCES_PART`,
    whose positions then stand still on purpose (switched on, the stage catches up from
    them)."""
    row = conn.execute(_FOLLOW_BACKLOG_SQL).fetchone()
    counts = row if row is not None else (0,) * len(FOLLOW_PARTS)
    left = dict(zip(FOLLOW_PARTS, (int(n) for n in counts), strict=True))
    if not audiences:
        del left[AUDIENCES_PART]
    return left
