"""Property-based fuzzing of both HTTP services from their OpenAPI documents (schemathesis).

Each service runs for real (uvicorn on a free port, over the real Postgres; the query service
over read models and aggregates replayed from a scenario, ingest publishing to the embedded
broker) and the schemathesis CLI is pointed at its ``/openapi.json`` with a valid bearer token.
Every operation gets schemathesis' explicit examples, its coverage cases (boundary values,
wrong types, missing and extra parameters) and a fixed budget of generated requests,
schema-conforming (positive) and schema-breaking (negative); a fuzz dictionary
(``fuzz/hostile.dict``: NUL characters, overflowing dates, too many groups, very long ids) is
mixed into one generated string in five. The run is deterministic (``--generation-deterministic``:
no randomness, no example database), so every run sends the same requests.

The checks are the issue-11 rule, no input gets a server error (5xx), and conformance of every
answer to the document: documented status code, content type and body schema. The figures
(operations, requests per operation, failures) are printed:
``pytest tests/integration/test_openapi_fuzz.py -s -k "query or tansu"``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool

from services.ingest.app import create_app as create_ingest_app
from services.query.app import create_app as create_query_app
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.replay import replay
from tenure.runtime.broker import LocalBroker
from tenure.storage.tokens import create_token
from tests.factories import scenario
from tests.integration.conftest import ServerThread
from tests.integration.pipeline import archive_events

MAX_EXAMPLES = 50
"""Generated (fuzzing-phase) requests per operation and mode, besides examples and coverage."""
SEED = 11
FUZZ_CONFIG = Path(__file__).with_name("fuzz") / "schemathesis.toml"
"""Mixes the hostile values of ``fuzz/hostile.dict`` (NUL, overflowing dates...) into strings."""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


@dataclass(frozen=True)
class FuzzResult:
    """What one schemathesis run did: figures from its JSON report, and its console output."""

    exit_code: int
    operations: int
    requests: int
    failures: int
    kinds: list[str]
    statuses: dict[int, int]
    output: str

    def summary(self, service: str) -> str:
        """One line of figures (for RELIABILITY.md)."""
        return (
            f"{service}: {self.operations} operations, {self.requests} requests "
            f"(~{self.requests // max(self.operations, 1)} per operation), "
            f"answers by status {self.statuses}, "
            f"{self.failures} failing requests {self.kinds}, exit code {self.exit_code}"
        )


def _figures(report: dict[str, Any]) -> tuple[int, int, int, list[str]]:
    """Operations, requests, failing cases and failure kinds from a ``--report json`` file."""
    kinds = [
        f"{failure['title']} x{failure['count']}: {', '.join(failure['operations'])}"
        for failure in report["failures"]
    ]
    return (
        report["operations"]["tested"],
        report["test_cases"]["generated"],
        report["test_cases"]["with_failures"] + report["test_cases"]["errored"],
        kinds,
    )


def fuzz(url: str, token: str, tmp_path: Path) -> FuzzResult:
    """Run the schemathesis CLI against the service at ``url``; return its figures."""
    report = tmp_path / "schemathesis.json"
    har = tmp_path / "schemathesis.har"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(FUZZ_CONFIG),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--continue-on-failure",
        "--no-color",
        "--report",
        "json,har",
        "--report-json-path",
        str(report),
        "--report-har-path",
        str(har),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path
    )
    output = done.stdout + done.stderr
    assert report.exists() and har.exists(), output[-4000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(entry["response"]["status"] for entry in entries)
    return FuzzResult(
        done.returncode,
        *_figures(json.loads(report.read_text())),
        dict(sorted(statuses.items())),
        output,
    )


def documented_operations(url: str) -> int:
    """How many operations (path and method) the service's OpenAPI document declares."""
    document = httpx.get(f"{url}/openapi.json", timeout=10).json()
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)


@pytest.fixture
def query_url(pool: ConnectionPool, database_url: str) -> Iterator[tuple[str, str]]:
    """The query service over read models and aggregates rebuilt from a small scenario."""
    events = scenario(4, 25, source="urn:tenure:fuzz", end=datetime.now(UTC))
    with pool.connection() as conn, conn.transaction():
        archive_events(conn, events)
        token = create_token(conn, "fuzzer", scope="read")
    replay(database_url, allowed_lateness=timedelta(0))
    with ServerThread(create_query_app(pool=pool)) as server:
        yield server.url, token


def test_query_api_never_answers_5xx_and_conforms_to_its_openapi(
    query_url: tuple[str, str], tmp_path: Path
) -> None:
    url, token = query_url
    result = fuzz(url, token, tmp_path)
    print("\n" + result.summary("query"))
    assert result.exit_code == 0 and result.failures == 0, result.output[-6000:]
    assert result.operations == documented_operations(url) >= 9


def test_ingest_api_never_answers_5xx_and_conforms_to_its_openapi(
    broker: LocalBroker, pool: ConnectionPool, tmp_path: Path
) -> None:
    if broker.name != "tansu":
        pytest.skip("fuzzes the HTTP input, not the broker: runs once, on the embedded broker")
    publisher = EventPublisher(broker.bootstrap, timeout_s=10)
    app = create_ingest_app(
        pool=pool,
        publisher=publisher,
        max_body_bytes=1 << 20,
        max_batch_events=1000,
        future_tolerance=timedelta(seconds=300),
    )
    with pool.connection() as conn:
        token = create_token(conn, "fuzzer")
    try:
        with ServerThread(app) as server:
            result = fuzz(server.url, token, tmp_path)
            operations = documented_operations(server.url)
    finally:
        publisher.close()
    print("\n" + result.summary("ingest"))
    assert result.exit_code == 0 and result.failures == 0, result.output[-6000:]
    assert result.operations == operations >= 2
