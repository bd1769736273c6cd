"""`tenure replay` merges the read models in place: what BI users built on ``persons``
(grants, dependent views) survives it, and the view shows the replayed rows (Postgres only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from tenure.projection.replay import replay
from tests.factories import scenario
from tests.integration.pipeline import archive_events

END = datetime.now(UTC) - timedelta(hours=2)


def test_grants_and_dependent_views_survive_replay(database_url: str) -> None:
    events = scenario(7, 12, source="urn:test:keeps", end=END)
    half = len(events) // 2
    with psycopg.connect(database_url) as conn:
        archive_events(conn, events[:half])
    first = replay(database_url)
    role = f"bi_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        oid = conn.execute("SELECT 'persons'::regclass::oid").fetchone()
        conn.execute(f"CREATE ROLE {role}")
        conn.execute(f"GRANT SELECT ON persons TO {role}")
        conn.execute("CREATE VIEW bi_people AS SELECT person_id, segment, stage FROM persons")
        conn.execute(f"GRANT SELECT ON bi_people TO {role}")
        before = conn.execute("SELECT count(*) FROM bi_people").fetchone()
    assert before == (first.persons,)

    with psycopg.connect(database_url) as conn:
        archive_events(conn, events[half:])
    second = replay(database_url)  # failed before: the view depended on the dropped table

    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 'persons'::regclass::oid").fetchone() == oid
        assert conn.execute(
            "SELECT has_table_privilege(%s, 'persons', 'SELECT')", (role,)
        ).fetchone() == (True,)
        shown = conn.execute(
            "SELECT person_id, segment, stage FROM bi_people ORDER BY 1"
        ).fetchall()
        stored = conn.execute("SELECT person_id, segment, stage FROM persons ORDER BY 1").fetchall()
        conn.execute(f"SET ROLE {role}")
        assert conn.execute("SELECT count(*) FROM bi_people").fetchone() == (second.persons,)
    assert second.events > first.events  # the second replay read the whole archive
    assert shown == stored and len(shown) == second.persons >= first.persons
