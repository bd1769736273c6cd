"""A client generated from each service's OpenAPI document works against the real servers.

``openapi-python-client`` (a widely used generator, from PyPI; see ``tests/integration/tools``
for why it has its own virtualenv) generates typed clients from the live ``/openapi.json``
of the ingest and query services. The bearer security scheme makes them authenticated
clients (``AuthenticatedClient(token=...)``); the typed response models make
``GET /v1/persons/{id}`` answer a ``Person`` whose segment, stage and level are enums.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool

from services.query.app import create_app as create_query_app
from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.projection.replay import replay
from tenure.runtime.broker import LocalBroker
from tenure.storage.tokens import create_token
from tests.factories import make_event, scenario
from tests.integration.conftest import ServerThread
from tests.integration.pipeline import archive_events, ingest_server
from tests.integration.tools import openapi_python_client

pytestmark = pytest.mark.kafka


def generate(url: str, package: str, folder: Path) -> ModuleType:
    """Generate a client package from ``url``'s OpenAPI document into ``folder`` and import it."""
    generator = openapi_python_client()
    document = folder / f"{package}.json"
    document.write_bytes(httpx.get(f"{url}/openapi.json", timeout=10).content)
    started = time.monotonic()
    done = subprocess.run(
        [str(generator), "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(folder / package)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{generator.parent}:{os.environ['PATH']}"},
    )  # fmt: skip
    print(f"\n{package} generated in {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(package)


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


@pytest.fixture
def query_service(pool: ConnectionPool, database_url: str) -> Iterator[tuple[str, str, str]]:
    """The query service over read models replayed from a small scenario; URL, token, a person."""
    events = scenario(3, 10, source="urn:tenure:client", end=datetime.now(UTC))
    with pool.connection() as conn, conn.transaction():
        archive_events(conn, events)
        token = create_token(conn, "generated-client", scope="read")
    replay(database_url, allowed_lateness=timedelta(0))
    with pool.connection() as conn:
        row = conn.execute("SELECT person_id FROM persons ORDER BY person_id LIMIT 1").fetchone()
    assert row is not None
    with ServerThread(create_query_app(pool=pool)) as server:
        yield server.url, token, row[0]


def test_a_generated_client_reads_a_person_and_sends_events_with_a_token(
    broker: LocalBroker,
    pool: ConnectionPool,
    query_service: tuple[str, str, str],
    unique_source: str,
    tmp_path: Path,
) -> None:
    if broker.name != "tansu":
        pytest.skip("exercises the HTTP documents, not the broker: runs on the embedded one")
    query_url, read_token, person_id = query_service
    query = generate(query_url, "tenure_query_client", tmp_path)
    get_person = _module(query, "api.default.get_person")
    person = get_person.sync(
        client=query.AuthenticatedClient(base_url=query_url, token=read_token),
        person_id=person_id,
    )
    assert type(person).__name__ == "Person" and person.person_id == person_id
    assert person.segment.value in set(Segment) and person.stage.value in set(Stage)
    assert person.level.value in set(Level) and isinstance(person.as_of, datetime)
    refused = get_person.sync_detailed(client=query.Client(base_url=query_url), person_id=person_id)
    assert refused.status_code == 401 and type(refused.parsed).__name__ == "ErrorBody"

    with ingest_server(pool, broker.bootstrap) as (ingest_url, token):
        ingest = generate(ingest_url, "tenure_ingest_client", tmp_path)
        post_events = _module(ingest, "api.default.post_events")
        models = _module(ingest, "models")
        (device_used,) = [
            getattr(models, name) for name in dir(models) if name.endswith("JsonDeviceUsed")
        ]
        event = make_event("device.used", source=unique_source)
        answer = post_events.sync(
            client=ingest.AuthenticatedClient(base_url=ingest_url, token=token),
            body=[device_used.from_dict(event)],
        )
    assert type(answer).__name__ == "IngestResponse" and answer.accepted == 1
    assert [(r.id, r.status.value) for r in answer.results] == [(event["id"], "accepted")]
