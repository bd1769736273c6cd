"""Real archiver, projector and SDK validator processes answer ``/healthz`` on their metrics
port from their consume loop."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from tenure.runtime.broker import LocalBroker
from tenure.runtime.process import ManagedProcess, free_port, port_open
from tests.integration.conftest import env_for

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("worker_name", ["archiver", "projector", "sdk-validator"])
def test_a_worker_is_live_on_its_loop(
    broker: LocalBroker, database_url: str, scratch_dir: Path, worker_name: str
) -> None:
    if broker.name != "tansu":
        pytest.skip("the wiring, not the broker: runs on the embedded one")
    port = free_port()
    setting = f"TENURE_{worker_name.upper().replace('-', '_')}_METRICS_PORT"
    worker = ManagedProcess(
        worker_name,
        [sys.executable, "-m", "tenure.cli.app", "worker", worker_name],
        scratch_dir / f"liveness-{worker_name}.log",
        env=env_for(
            broker.bootstrap,
            database_url,
            TENURE_STATE_DIR=str(scratch_dir / f"liveness-{worker_name}"),
            **{setting: str(port)},
        ),
    )
    worker.start()
    try:
        worker.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        worker.stop()
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert "tenure_worker_ready" in metrics.text
