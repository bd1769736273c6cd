"""The embedded Postgres runs with the settings ``SERVER_SETTINGS`` names and shared buffers
sized to the machine."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tenure.runtime.postgres import (
    SERVER_SETTINGS,
    EmbeddedPostgres,
    machine_memory_bytes,
    shared_buffers_mb,
)


def test_the_server_runs_with_its_settings(postgres_server: EmbeddedPostgres) -> None:
    with psycopg.connect(postgres_server.url_for("postgres"), connect_timeout=5) as conn:
        shown = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            for name, _ in SERVER_SETTINGS
        }
        buffers = conn.execute(
            "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
    assert shown == {name: (value,) for name, value in SERVER_SETTINGS}
    assert buffers == (shared_buffers_mb(machine_memory_bytes()) * 1024 * 1024,)
