"""``tenure up`` (embedded default) as a child of a benchmark: start, find, scrape, stop.

The platform runs in a fresh state folder with every port chosen free, exactly as a user's
``tenure up`` would with no settings; its status file says where everything is. Whatever
happens, nothing it started is left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tenure.config import OS_CHOSEN_PORTS
from tenure.platform.status import PlatformStatus, read_status
from tenure.runtime.process import process_alive
from tenure.storage.tokens import create_token

STARTUP_TIMEOUT_S = 180.0
"""How long ``tenure up`` may take to write its status file on a loaded machine."""
_UNSET = ("TENURE_KAFKA_BOOTSTRAP", "TENURE_DATABASE_URL", "TENURE_TOKEN")
"""Settings that would point ``tenure up`` at outside servers instead of the embedded ones."""


@dataclass(frozen=True, slots=True)
class RunningPlatform:
    """A running ``tenure up``: its status, tokens for producing and reading, its log."""

    status: PlatformStatus
    state_dir: Path
    log: Path
    ingest_token: str
    read_token: str


def scrape(url: str) -> dict[str, float]:
    """A Prometheus endpoint's samples, keyed ``name{label=value,...}`` (labels sorted)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return samples


def _wait_for_projector(state_dir: Path, deadline: float) -> None:
    """Wait until the projector joined its group (its log says so)."""
    log = state_dir / "logs" / "projector.log"
    while time.monotonic() < deadline:
        if log.exists() and "projector assigned" in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise TimeoutError("the projector did not join its consumer group")


@contextmanager
def tenure_up(scratch: Path, **extra_env: str) -> Iterator[RunningPlatform]:
    """Run ``tenure up`` in a fresh state folder under ``scratch``; stop it afterwards."""
    state = scratch / f"platform-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env.update(
        TENURE_STATE_DIR=str(state),
        **OS_CHOSEN_PORTS,
        **extra_env,
    )
    log_path = scratch / f"tenure-up-{state.name}.log"
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenure.cli.app", "up"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    status: PlatformStatus | None = None
    try:
        while status is None:
            if proc.poll() is not None:
                raise RuntimeError(f"tenure up exited: {log_path.read_text()[-2000:]}")
            if time.monotonic() - started > STARTUP_TIMEOUT_S:
                raise TimeoutError(f"tenure up wrote no status within {STARTUP_TIMEOUT_S} s")
            time.sleep(0.5)
            status = read_status(state)
        _wait_for_projector(state, started + STARTUP_TIMEOUT_S)
        with psycopg.connect(status.database_url) as conn:
            ingest_token = create_token(conn, "bench-freshness")
            read_token = create_token(conn, "bench-freshness-read", "read")
        yield RunningPlatform(status, state, log_path, ingest_token, read_token)
    finally:
        children = dict((read_status(state) or status).processes if status else {})
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # stop it the way a user would
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in children.values():
            if process_alive(pid):  # never leave a child behind
                os.kill(pid, signal.SIGKILL)
