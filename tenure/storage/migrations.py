"""Versioned, idempotent database migrations (``tenure/storage/sql/NNNN_name.sql``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from tenure.errors import TenureError
from tenure.storage import audience_definitions

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x7E5A2E  # advisory lock: one migrator at a time


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version, name, SQL text and checksum."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL text; an applied migration must never change."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(TenureError, RuntimeError):
    """The database's migration history disagrees with the migration files."""


def available_migrations() -> list[Migration]:
    """Every migration shipped with Tenure, in version order."""
    found = []
    for entry in resources.files("tenure.storage").joinpath("sql").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


def migrate(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Apply the migrations the database lacks, each in its own transaction; return them.

    Safe to run concurrently and repeatedly: an advisory lock serialises migrators and applied
    versions are skipped. An applied migration whose file changed is an error. Then seeds
    the shipped audiences (:func:`~tenure.storage.audience_definitions.seed_shipped`).
    """
    applied_now: list[Migration] = []
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        applied = {int(r[0]): str(r[1]) for r in rows}
        for migration in available_migrations():
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration)
        # Reference data that ships with the schema: the audiences of the package's file
        # (a new version only when the file changed; docs/audiences.md).
        audience_definitions.seed_shipped(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
