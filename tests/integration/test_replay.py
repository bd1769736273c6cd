"""`tenure replay` rebuilds the read models from the archive, equal to the pure fold."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from tenure.domain.device_view import device_view_of
from tenure.domain.events import parse_event
from tenure.domain.world import fold, views
from tenure.projection.replay import aliases_by_person, replay
from tenure.projection.screen import unstorable
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS
from tenure.runtime.broker import LocalBroker
from tenure.storage.archive import read_envelopes
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS, device_row, person_row
from tests.factories import scenario
from tests.integration.pipeline import ingest_server, plain_row, running_archiver, wait_for_archive

pytestmark = pytest.mark.kafka


def decoded(conn: psycopg.Connection, envelopes: list[dict]) -> list[dict]:
    """Envelopes with each token the vault knows replaced by its person id (the archive holds
    tokens for person ids: docs/design/erasure.md)."""
    vault = dict(conn.execute("SELECT pseudonym, person_id FROM person_pseudonyms").fetchall())
    out = []
    for envelope in envelopes:
        data = {
            k: vault.get(v) or v if isinstance(v, str) else v for k, v in envelope["data"].items()
        }
        out.append(envelope | {"data": data})
    return out


def rows(database_url: str, table: str, columns: tuple[str, ...]) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return [
            tuple(r)
            for r in conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1").fetchall()
        ]


def test_replay_of_the_archive_equals_the_pure_fold(
    broker: LocalBroker, pool, database_url: str, unique_source: str
) -> None:
    end = datetime.now(UTC) - timedelta(hours=2)
    events = scenario(11, 25, source=unique_source, end=end)
    rng = random.Random(3)
    deliveries = events + rng.sample(events, 40)  # duplicates
    rng.shuffle(deliveries)  # out of order
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        running_archiver(pool, broker.bootstrap),
    ):
        for i in range(0, len(deliveries), 100):
            reply = httpx.post(
                f"{url}/v1/events",
                json=deliveries[i : i + 100],
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert reply.status_code == 200 and reply.json()["rejected"] == 0
        ids = wait_for_archive(database_url, unique_source, len(events))
    assert sorted(ids) == sorted(e["id"] for e in events)

    result = replay(database_url)
    # The archiver read the shared topics from the start: earlier tests' events are archived
    # too, poison records among them (tests/integration/test_poison_records.py), which the
    # replay dead-letters. It must equal the pure fold of exactly what the archive holds
    # that the projection can store, decoded: tokens of this database's vault become ids
    # (other tests' tokens stay tokens).
    with psycopg.connect(database_url) as conn, conn.transaction():
        archived = [parse_event(e) for e in decoded(conn, list(read_envelopes(conn)))]
    storable = [e for e in archived if unstorable(e) is None]
    assert result.events == len(storable)
    assert result.dead_lettered == len(archived) - len(storable)
    world = fold(storable)
    as_of = max(e.at for e in storable) - DEFAULT_ALLOWED_LATENESS
    assert result.as_of == as_of
    aliases = aliases_by_person(world)
    expected_persons = sorted(
        person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items()
    )
    expected_devices = sorted(device_row(device_view_of(s)) for s in world.devices.values())
    got_persons = [plain_row(r) for r in rows(database_url, "persons", PERSON_COLUMNS)]
    got_devices = rows(database_url, "devices", DEVICE_COLUMNS)
    assert got_persons == [plain_row(r) for r in expected_persons]
    assert got_devices == expected_devices
    segments = {r[3] for r in got_persons}
    assert {"customer_only", "user_only", "customer_and_user"} <= segments
    assert any(r[11] for r in got_persons), "a super user"
    erased = "p11-3"
    assert all(erased not in (r[0], *r[2]) for r in got_persons)

    again = replay(database_url)  # a second rebuild swaps in identical tables
    assert again.persons == result.persons
    assert [plain_row(r) for r in rows(database_url, "persons", PERSON_COLUMNS)] == got_persons
