"""`tenure simulate`'s sending: batching, pacing, retries and accounting (no network)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import orjson
import pytest
import typer
from typer.testing import CliRunner

from tenure.cli.simulate import (
    IngestClient,
    IngestRefused,
    Pace,
    SendReport,
    send,
    simulate_command,
)
from tenure.simulation import SimulationParameters, simulate


class FakeIngest:
    """Answers like the ingest service: duplicates by (source, id); 503 on demand."""

    def __init__(self, fail_first: int = 0, status: int | None = None) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.batches: list[int] = []
        self.fail_first = fail_first
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer tok"
        if self.status is not None:
            return httpx.Response(self.status, json={"error": "no"})
        if self.fail_first:
            self.fail_first -= 1
            return httpx.Response(503, json={"error": "broker"}, headers={"Retry-After": "0"})
        events: list[dict[str, Any]] = orjson.loads(request.content)
        self.batches.append(len(events))
        results, counts = [], {"accepted": 0, "duplicates": 0, "rejected": 0}
        for i, e in enumerate(events):
            key = (e["source"], e["id"])
            status = "duplicate" if key in self.seen else "accepted"
            self.seen.add(key)
            counts["duplicates" if status == "duplicate" else "accepted"] += 1
            results.append({"index": i, "status": status, "id": e["id"], "source": e["source"]})
        return httpx.Response(200, json={**counts, "results": results})


def client(fake: FakeIngest, stop: threading.Event | None = None) -> IngestClient:
    transport = httpx.Client(transport=httpx.MockTransport(fake))
    return IngestClient("http://ingest", "tok", stop or threading.Event(), client=transport)


def test_a_fast_run_sends_everything_in_full_batches_and_accounts_for_it() -> None:
    sim = simulate(SimulationParameters(people=30, seed=1))
    fake = FakeIngest()
    report = SendReport()
    pace = Pace(sim.parameters.start, sim.parameters.end, None, time.monotonic())
    send(sim.deliveries, client(fake), pace, report, batch_size=100)
    assert report.sent == len(sim.deliveries) == sum(fake.batches)
    assert all(n == 100 for n in fake.batches[:-1])
    assert report.duplicates == sim.truth.duplicates
    assert report.accepted == sim.truth.events
    assert report.accepted + report.duplicates + report.rejected == report.sent


def test_503_is_retried_and_other_refusals_stop() -> None:
    sim = simulate(SimulationParameters(people=5, seed=2))
    fake = FakeIngest(fail_first=2)
    report = SendReport()
    pace = Pace(sim.parameters.start, sim.parameters.end, None, time.monotonic())
    send(sim.deliveries[:10], client(fake), pace, report)
    assert report.retries == 2 and report.accepted == 10
    with pytest.raises(IngestRefused, match="401"):
        send(sim.deliveries[:10], client(FakeIngest(status=401)), pace, SendReport())


def test_pacing_spreads_the_span_over_real_time_and_stop_ends_it() -> None:
    sim = simulate(SimulationParameters(people=10, days=10, seed=3))
    span_s = (sim.parameters.end - sim.parameters.start).total_seconds()
    fake = FakeIngest()
    report = SendReport()
    began = time.monotonic()
    pace = Pace(sim.parameters.start, sim.parameters.end, span_s / 1.0, began)
    send(sim.deliveries, client(fake), pace, report, batch_size=1000)
    assert 0.5 < time.monotonic() - began < 3
    assert len(fake.batches) > 1 and report.sent == len(sim.deliveries)
    stop = threading.Event()
    stop.set()
    interrupted = SendReport()
    send(sim.deliveries, client(FakeIngest(), stop), pace, interrupted)
    assert interrupted.interrupted


def test_the_command_sends_and_prints_the_summary_and_truth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeIngest()
    real_client = httpx.Client
    monkeypatch.setattr(
        "tenure.cli.simulate.httpx.Client",
        lambda **kw: real_client(transport=httpx.MockTransport(fake)),
    )
    app = typer.Typer()
    app.command("simulate")(simulate_command)
    args = ["--ingest-url", "http://ingest", "--token", "tok", "--people", "12"]
    result = CliRunner().invoke(app, [*args, "--days", "30", "--as-fast-as-possible"])
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.output
    assert "median tenure, intended" in result.output
    assert sum(fake.batches) > 0
