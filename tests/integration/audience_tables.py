"""The audience member tables, for tests only, until migration 0022 (the projector's live
membership, branch aud-live) is in this tree.

The DDL agreed with that migration (docs/audiences.md): created only if missing, so once
0022 is merged (and has run first, in every test database) this does nothing and can go.
"""

from __future__ import annotations

from typing import Any

import psycopg

MEMBER_TABLES = """
CREATE TABLE IF NOT EXISTS audience_members (
    audience text NOT NULL,
    person_id text NOT NULL,
    version integer NOT NULL,
    entered_at timestamptz NOT NULL,
    suppressed text NULL,
    changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (audience, person_id)
);
CREATE INDEX IF NOT EXISTS audience_members_by_change
    ON audience_members (audience, changed_xid, person_id);
CREATE TABLE IF NOT EXISTS audience_exits (
    audience text NOT NULL,
    person_id text NOT NULL,
    exited_at timestamptz,
    changed_xid xid8 DEFAULT pg_current_xact_id(),
    PRIMARY KEY (audience, person_id)
);
"""


def ensure_member_tables(conn: psycopg.Connection[Any]) -> None:
    """Create the member tables if no migration did (test databases only)."""
    with conn.transaction():
        conn.execute(MEMBER_TABLES)
