"""``tenure.storage.follow_backlog``: what the follow stage has left, counted against its
positions and queues (and ``bench.follow_backlog``, which waits for it to be empty)."""

from __future__ import annotations

import psycopg
import pytest

from bench.derive_cost import events_of, run
from bench.follow_backlog import wait_followed
from tenure.storage import person_changes, transitions_outbox
from tenure.storage.follow_backlog import AUDIENCES_PART, FOLLOW_PARTS, follow_backlog


def _left(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return follow_backlog(conn)


def _relay_everything(database_url: str) -> None:
    """Move both relays past every row, as the follow stage does once the broker
    acknowledged a page (the pages themselves are not sent anywhere here)."""
    with psycopg.connect(database_url) as conn:
        _, position = transitions_outbox.after(conn, transitions_outbox.START, 1_000_000)
        transitions_outbox.move_relay(conn, position)
        page = person_changes.changes_after(conn, person_changes.START, 1_000_000, ("person_id",))
        person_changes.move_relay(conn, page.next)


def test_the_follow_backlog_is_what_lies_past_each_position(database_url: str) -> None:
    run(database_url, events_of(people=15, days=40), batch=100)  # derived, aggregated
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM lifecycle_transitions),"
            " (SELECT count(*) FROM persons) + (SELECT count(*) FROM person_removals)"
        ).fetchone()
    assert counts is not None and counts[0] > 0 and counts[1] > 0
    left = _left(database_url)
    assert tuple(left) == FOLLOW_PARTS
    assert left["transitions_unpublished"] == counts[0]
    assert left["persons_changes_unrelayed"] == counts[1]
    assert left["survival_marks"] == left["churn_marks"] == 0  # the harness drained them

    with psycopg.connect(database_url) as conn:  # an audience at the start of the feed
        conn.execute("INSERT INTO audience_positions (audience, version) VALUES ('new', 1)")
        persons = conn.execute("SELECT count(*) FROM persons").fetchone()
        assert persons is not None
        assert follow_backlog(conn)["audience_changes_unevaluated"] == persons[0]
        # with the stage switched off its positions stand still on purpose: not reported
        off = follow_backlog(conn, audiences=False)
        assert tuple(off) == tuple(p for p in FOLLOW_PARTS if p != AUDIENCES_PART)
        # another at the end of the feed: the stage still reads all of it for the first
        last = conn.execute(
            "SELECT changed_xid, person_id FROM persons ORDER BY 1 DESC, 2 DESC LIMIT 1"
        ).fetchone()
        assert last is not None
        conn.execute(
            "INSERT INTO audience_positions VALUES ('caught-up', 1, %s, %s)", (last[0], last[1])
        )
        assert follow_backlog(conn)["audience_changes_unevaluated"] == persons[0]
        conn.execute("DELETE FROM audience_positions WHERE audience = 'new'")
        assert follow_backlog(conn)["audience_changes_unevaluated"] == 0
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM audience_positions")

    _relay_everything(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO survival_dirty (person_id) VALUES ('someone'), ('someone')")
        conn.execute("INSERT INTO churn_pending (person_id, grp) VALUES ('x', '*')")
    left = _left(database_url)
    assert left["transitions_unpublished"] == left["persons_changes_unrelayed"] == 0
    assert (left["survival_marks"], left["churn_marks"]) == (2, 1)  # marks, not persons

    with pytest.raises(TimeoutError, match="survival_marks"):
        wait_followed(database_url, timeout_s=0)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM survival_dirty")
        conn.execute("DELETE FROM churn_pending")
    first, _ = wait_followed(database_url, timeout_s=5)
    assert not any(first.values())
