"""`tenure simulate` through the real ingest service and archiver, on both broker tiers."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from tenure.cli.simulate import IngestClient, Pace, SendReport, send, simulate_command
from tenure.runtime.broker import LocalBroker
from tenure.simulation import SimulationParameters, simulate
from tests.integration.pipeline import ingest_server, running_archiver

pytestmark = pytest.mark.kafka


def archived(database_url: str, prefix: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM event_archive WHERE source LIKE %s", (f"{prefix}:%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_for_rows(database_url: str, prefix: str, expected: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    rows = archived(database_url, prefix)
    while rows < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = archived(database_url, prefix)
    time.sleep(0.5)
    return archived(database_url, prefix)


def test_a_simulated_population_is_accepted_and_archived_exactly(
    broker: LocalBroker, pool, database_url: str
) -> None:
    prefix = f"urn:tenure:simulator-test:{uuid.uuid4().hex[:8]}"
    end = datetime.now(UTC).replace(microsecond=0)
    params = replace(
        SimulationParameters(people=40, seed=17, source_prefix=prefix),
        start=end - timedelta(days=365),
    )
    sim = simulate(params)
    cli_prefix = f"{prefix}-cli"
    with (
        ingest_server(pool, broker.bootstrap) as (url, token),
        running_archiver(pool, broker.bootstrap),
    ):
        report = SendReport()
        ingest = IngestClient(url, token, threading.Event())
        try:
            send(sim.deliveries, ingest, Pace(params.start, end, None, time.monotonic()), report)
        finally:
            ingest.close()
        app = typer.Typer()
        app.command("simulate")(simulate_command)
        cli = CliRunner().invoke(
            app,
            [
                *("--ingest-url", url, "--token", token, "--people", "8", "--days", "60"),
                *("--seed", "5", "--source-prefix", cli_prefix, "--as-fast-as-possible"),
                "--batch-size",
                "50",
            ],
        )
        rows = wait_for_rows(database_url, prefix, report.accepted)
        cli_rows = archived(database_url, cli_prefix)
    print(
        f"\n[{broker.name}] sent {report.sent} events in {report.seconds:.2f} s:"
        f" {report.rate:.0f} events/s through ingest ({report.requests} requests)"
    )
    assert report.rejected == 0, report.rejections
    assert report.sent == len(sim.deliveries)
    assert report.accepted + report.duplicates == report.sent
    assert report.accepted == sim.truth.events and report.duplicates == sim.truth.duplicates
    assert rows == report.accepted
    assert cli.exit_code == 0, cli.output
    assert "rejected 0" in cli.output
    accepted = int(cli.output.split("accepted ")[1].split()[0])
    assert cli_rows == accepted > 0
