"""Every start converges: `tenure up` stopped while its projector lagged projects every
archived event at the next start (the issue's 0 of 100 persons)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.factories import make_event
from tests.integration.pipeline import wait_for_archive
from tests.integration.test_platform import _alive, _tenure

pytestmark = pytest.mark.soak  # a fault run (`make test-faults`), beside the fault matrix


@contextmanager
def tenure_up(
    env: dict[str, str], log_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """Run `tenure up` until the block ends (SIGTERM, as the issue did); yield its status."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenure.cli.app", "up"], env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    status: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not status:
            reply = _tenure("status", "--json", env=env)
            if reply.returncode == 0:
                status = json.loads(reply.stdout)
            else:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                time.sleep(0.5)
        assert status, "tenure up did not start"
        yield proc, status
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in status.get("processes", {}).values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()


def _events(source: str) -> list[dict[str, Any]]:
    """1,000 events about 100 persons and 133 devices."""
    at = datetime.now(UTC) - timedelta(hours=3)
    out = [
        make_event("device.activated", source=source, at=at, data={
            "device_id": f"rc-d{d}", "person_id": f"rc-p{d % 100}", "product": "watch"})
        for d in range(133)
    ]  # fmt: skip
    out += [
        make_event("device.used", source=source, at=at + timedelta(minutes=1 + i % 90),
                   data={"device_id": f"rc-d{i % 133}", "duration_s": 60})
        for i in range(1000 - len(out))
    ]  # fmt: skip
    return out


def _projected(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM persons WHERE person_id LIKE 'rc-p%'),"
            " (SELECT count(*) FROM devices WHERE device_id LIKE 'rc-d%')"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def test_a_restart_after_a_lagging_projector_projects_every_archived_event(
    scratch_dir: Path, postgres_server: object
) -> None:
    state = scratch_dir / f"restart-{time.monotonic_ns()}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TENURE_KAFKA_BOOTSTRAP", "TENURE_DATABASE_URL")
    }
    env.update(TENURE_STATE_DIR=str(state), TENURE_INGEST_PORT="0",
               TENURE_ARCHIVER_METRICS_PORT="0", TENURE_SDK_VALIDATOR_METRICS_PORT="0")  # fmt: skip
    source = "urn:tenure:restart"
    events = _events(source)
    log_path = scratch_dir / "tenure-up-restart.log"
    with tenure_up(env, log_path) as (_, status):
        token = _tenure("token", "create", "--producer", "restart", env=env).stdout.strip()
        os.kill(status["processes"]["projector"], signal.SIGSTOP)  # the projector lags
        for i in range(0, len(events), 500):
            reply = httpx.post(
                f"{status['ingest_url']}/v1/events", json=events[i : i + 500],
                headers={"Authorization": f"Bearer {token}"}, timeout=60,
            )  # fmt: skip
            assert reply.status_code == 200 and reply.json()["accepted"] == 500
        ids = wait_for_archive(status["database_url"], source, len(events), timeout=90)
        assert len(ids) == len(events)  # all archived
        assert _projected(status["database_url"]) == (0, 0)  # none projected
    # SIGTERM'd with the projector stopped: the memory-only broker loses the 1,000 records.
    with tenure_up(env, log_path) as (_, status):
        deadline = time.monotonic() + 120
        got = (0, 0)
        while time.monotonic() < deadline and got != (100, 133):
            time.sleep(1)
            got = _projected(status["database_url"])
        assert got == (100, 133)
        with psycopg.connect(status["database_url"]) as conn:
            row = conn.execute(
                "SELECT (SELECT archive_seq FROM projection_convergence),"
                " (SELECT max(seq) FROM event_archive)"
            ).fetchone()
        assert row is not None and row[0] == row[1]  # the checkpoint is at the archive's end
