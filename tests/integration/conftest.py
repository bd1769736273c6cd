"""Real servers for integration tests: one Postgres per session, a fresh database per test,
and each Kafka-touching test run once per broker (Apache Kafka from Maven, embedded Tansu)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn
from psycopg_pool import ConnectionPool

from tenure.runtime.apache_kafka import ApacheKafkaBroker, java_and_maven_missing
from tenure.runtime.broker import LocalBroker
from tenure.runtime.postgres import EmbeddedPostgres
from tenure.runtime.process import StartupError, free_port
from tenure.runtime.tansu import TansuBroker
from tenure.storage.migrations import migrate
from tests.conftest import skip_tier

BROKERS = ("apache-kafka", "tansu")


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    """A world-traversable scratch folder (the Postgres server user must reach it)."""
    path = Path(tempfile.mkdtemp(prefix="tenure-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(scratch_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(scratch_dir / "postgres")
    try:
        server.start()
    except (StartupError, OSError) as exc:
        skip_tier("postgres", str(exc))
    yield server
    server.stop()


_db_numbers = itertools.count(1)


@pytest.fixture
def database_url(postgres_server: EmbeddedPostgres) -> str:
    """A fresh, migrated database for one test."""
    name = f"t{next(_db_numbers)}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.url_for(name)
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(database_url, min_size=1, max_size=16) as p:
        yield p


@pytest.fixture(scope="session", params=BROKERS)
def broker(request: pytest.FixtureRequest, scratch_dir: Path) -> Iterator[LocalBroker]:
    """A running broker; every test using it runs once per broker."""
    kind = request.param
    b: LocalBroker
    if kind == "apache-kafka":
        missing = java_and_maven_missing()
        if missing:
            skip_tier("apache-kafka", missing)
        b = ApacheKafkaBroker(scratch_dir / "apache-kafka")
    else:
        b = TansuBroker(scratch_dir / "tansu")
    try:
        b.start()
    except (StartupError, OSError) as exc:
        skip_tier(kind, f"{kind} did not start: {exc}")
    from tenure.eventlog.admin import ensure_topics

    ensure_topics(b.bootstrap, partitions=4)
    yield b
    b.stop()


@pytest.fixture
def embedded_only(broker: LocalBroker) -> None:
    """For tests of behaviour specific to the embedded broker."""
    if broker.name != "tansu":
        pytest.skip("embedded-broker behaviour")


class ServerThread:
    """A uvicorn server on a free port, in a thread."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")  # type: ignore[arg-type]
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def unique_source() -> str:
    """A CloudEvents source no other test uses, so assertions can filter by it."""
    return f"urn:tenure:test:{uuid.uuid4().hex[:12]}"


def env_for(bootstrap: str, database_url: str, **extra: str) -> dict[str, str]:
    """Environment for a child process using these servers."""
    env = dict(os.environ)
    env.update(TENURE_KAFKA_BOOTSTRAP=bootstrap, TENURE_DATABASE_URL=database_url, **extra)
    return env
