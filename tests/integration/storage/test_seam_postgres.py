"""Postgres: the storage seam's contract (``tests/seam_contract.py``) on a real database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tenure.storage.postgres_store import postgres_store
from tenure.storage.seam import ProjectionStore
from tests.seam_contract import SeamContract


class TestPostgresSeam(SeamContract):
    """Every contract test, on :func:`tenure.storage.postgres_store.postgres_store` over a
    fresh migrated database (one transaction per test, as a projection stage runs)."""

    @pytest.fixture
    def store(self, database_url: str) -> Iterator[ProjectionStore]:
        with psycopg.connect(database_url) as conn, conn.transaction():
            yield postgres_store(conn)
