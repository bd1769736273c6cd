"""Postgres: the storage seam's contract (``tests/seam_contract.py``) on a real database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from tenure.storage.connection import Conn
from tenure.storage.postgres_store import postgres_store
from tenure.storage.seam import ProjectionStore
from tests.integration.horizon import wait_for_the_horizon
from tests.seam_contract import SeamContract


class TestPostgresSeam(SeamContract):
    """Every contract test, on :func:`tenure.storage.postgres_store.postgres_store` over a
    fresh migrated database (one transaction per test, as a projection stage runs, unless
    the test commits: ``commit``)."""

    @pytest.fixture
    def connection(self, database_url: str) -> Iterator[Conn]:
        with psycopg.connect(database_url) as conn:  # not autocommit: one open transaction
            yield conn
            conn.rollback()

    @pytest.fixture
    def store(self, connection: Conn) -> ProjectionStore:
        return postgres_store(connection)

    @pytest.fixture
    def commit(self, connection: Conn, database_url: str) -> Callable[[], None]:
        """Commit the test's transaction (the next statement opens another), then wait until
        the change feeds' horizon has passed it."""

        def commit_and_wait() -> None:
            connection.commit()
            wait_for_the_horizon(database_url)

        return commit_and_wait
