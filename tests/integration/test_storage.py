"""Postgres: the embedded server's durability, migrations and producer tokens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from tenure.runtime.postgres import EmbeddedPostgres
from tenure.storage import migrations
from tenure.storage.migrations import Migration, MigrationError, available_migrations, migrate
from tenure.storage.tokens import authenticate, create_token, list_tokens, revoke_token


def test_rows_survive_kill_and_restart(scratch_dir: Path) -> None:
    server = EmbeddedPostgres(scratch_dir / "pg-durability")
    server.start()
    try:
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE facts (n int)")
            conn.execute("INSERT INTO facts SELECT generate_series(1, 1000)")
        server.kill()
        server.start()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT count(*) FROM facts").fetchone() == (1000,)
    finally:
        server.stop()


def test_migrations_are_idempotent_and_concurrency_safe(database_url: str) -> None:
    def run(_: int) -> int:
        with psycopg.connect(database_url) as conn:
            return len(migrate(conn))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sum(pool.map(run, range(4))) == 0  # the fixture already migrated
    with psycopg.connect(database_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in available_migrations()]


def test_a_changed_applied_migration_is_an_error(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in available_migrations()]
    monkeypatch.setattr(migrations, "available_migrations", lambda: changed)
    with psycopg.connect(database_url) as conn, pytest.raises(MigrationError, match="changed"):
        migrate(conn)


def test_tokens_are_stored_hashed_and_can_be_revoked(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        token = create_token(conn, "fleet-a")
        secret = token.split("_", 2)[2]
        stored = conn.execute("SELECT token_hash FROM producer_tokens").fetchone()
        assert stored is not None and secret.encode() not in bytes(stored[0])
        producer = authenticate(conn, token)
        assert producer is not None and producer.producer == "fleet-a" and not producer.revoked
        assert authenticate(conn, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert authenticate(conn, "garbage") is None
        assert revoke_token(conn, producer.token_id)
        assert not revoke_token(conn, producer.token_id)
        again = authenticate(conn, token)
        assert again is not None and again.revoked
        assert [t.producer for t in list_tokens(conn)] == ["fleet-a"]


def test_a_person_is_found_by_alias_through_the_alias_index(database_url: str) -> None:
    """The alias half of ``GET /v1/persons/{id}`` is answerable by ``persons_by_alias``
    (an ``= ANY(aliases)`` form cannot use it and scans ``persons``: 216 ms at 1M persons)."""
    from tenure.storage import person_reads

    with psycopg.connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                "EXPLAIN SELECT person_id FROM persons" + person_reads.BY_ID_OR_ALIAS,
                ("p-alias-probe", "p-alias-probe"),
            )
        )
        assert "persons_by_alias" in plan, plan
        assert person_reads.person(conn, "p-alias-probe-nobody") is None


def test_the_persons_table_says_how_its_key_is_chosen(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        table, key = conn.execute(
            "SELECT obj_description('persons'::regclass, 'pg_class'),"
            " col_description('persons'::regclass, 1)"
        ).fetchone() or (None, None)
    assert table is not None and "smallest id of the component" in table
    assert key is not None and "smallest" in key
