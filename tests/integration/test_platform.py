"""`tenure up` end to end on the embedded default: start, ingest, archive, broker crash, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.factories import make_event
from tests.integration.pipeline import wait_for_archive
from tests.integration.platform_run import alive as _alive
from tests.integration.platform_run import (
    cpu_nice,
    database_session_nices,
    running_platform,
    tcp_client_ports,
)
from tests.integration.platform_run import tenure as _tenure


@pytest.fixture
def platform(scratch_dir: Path, postgres_server: object) -> Iterator[tuple[dict[str, str], dict]]:
    with running_platform(scratch_dir) as running:
        yield running


def test_up_ingests_archives_survives_a_broker_crash_and_stops_cleanly(platform) -> None:
    env, status = platform
    assert status["startup_seconds"] < 120
    for key in ("ingest_url", "kafka_bootstrap", "database_url", "metrics_urls"):
        assert status[key]
    token = _tenure("token", "create", "--producer", "e2e", env=env)
    assert token.returncode == 0, token.stderr
    token_value = token.stdout.strip()
    headers = {"Authorization": f"Bearer {token_value}"}
    source = "urn:tenure:e2e"
    url = f"{status['ingest_url']}/v1/events"

    first = [make_event("device.used", source=source, n=i) for i in range(50)]
    reply = httpx.post(url, json=first, headers=headers, timeout=30)
    assert reply.status_code == 200 and reply.json()["accepted"] == 50
    for name, metrics_url in status["metrics_urls"].items():
        assert httpx.get(metrics_url, timeout=5).status_code == 200, name
    # Under CPU contention the intake yields to the projection (TENURE_INTAKE_NICE, 10).
    nices = {name: cpu_nice(pid) for name, pid in status["processes"].items()}
    for name in ("ingest", "archiver"):
        assert nices[name] == 10, nices
    for name in (
        "query",
        "sdk-validator",
        "projector",
        "deriver",
        "follower",
        "postgres",
        "broker",
    ):
        assert nices.get(name, 0) == 0, nices
    # ... and so do their sessions inside the embedded Postgres (TENURE_DATABASE_SESSION_NICE)
    sessions = database_session_nices(status["processes"]["postgres"])
    for name in ("ingest", "archiver", "query", "projector", "deriver", "follower"):
        theirs = [sessions[p] for p in tcp_client_ports(status["processes"][name]) if p in sessions]
        assert theirs, (name, sessions)
        assert set(theirs) == ({10} if name in ("ingest", "archiver") else {0}), (name, theirs)

    # Events acknowledged just before the memory-only broker dies must not be lost.
    second = [make_event("feedback.submitted", source=source, n=i) for i in range(50)]
    assert httpx.post(url, json=second, headers=headers, timeout=30).json()["accepted"] == 50
    broker_pid = status["processes"]["broker"]
    os.kill(broker_pid, signal.SIGKILL)
    deadline = time.monotonic() + 90
    recovered: dict = {}
    while time.monotonic() < deadline:
        reply_ = _tenure("status", "--json", env=env)
        if reply_.returncode == 0:
            recovered = json.loads(reply_.stdout)
            if recovered["broker_recoveries"] >= 1:
                break
        time.sleep(0.5)
    assert recovered.get("broker_recoveries") == 1
    third = [make_event("device.activated", source=source, n=i) for i in range(50)]
    for _ in range(60):
        reply = httpx.post(url, json=third, headers=headers, timeout=30)
        if reply.status_code == 200:
            break
        time.sleep(1)
    assert reply.status_code == 200
    ids = wait_for_archive(status["database_url"], source, 150, timeout=90)
    assert sorted(ids) == sorted(e["id"] for e in first + second + third)

    pids = list(recovered["processes"].values())
    supervisor = status["supervisor"]
    supervisor.send_signal(signal.SIGINT)
    supervisor.wait(timeout=60)
    assert supervisor.returncode == 0
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p for p in pids if _alive(p)] == []
    assert _tenure("status", "--json", env=env).returncode == 1
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(status["database_url"], connect_timeout=2)


def test_a_normal_start_logs_no_client_chatter(platform) -> None:
    """`tenure up` used to print ~40 kafka-python INFO lines, and ECONNREFUSED ERRORs while
    the embedded broker was starting; the workers' logs were mostly faust and aiokafka."""
    env, status = platform
    logs = Path(env["TENURE_STATE_DIR"]) / "logs"
    deadline = time.monotonic() + 60
    while "projector assigned" not in (logs / "projector.log").read_text():
        assert time.monotonic() < deadline, (logs / "projector.log").read_text()[-3000:]
        time.sleep(0.5)
    supervisor = status["supervisor"]
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=60) == 0
    up_log = status["log"].read_text()
    ours = up_log[up_log.index(f"started postgres (pid {status['processes']['postgres']})") :]
    texts = {"tenure up": ours} | {
        path.name: path.read_text() for path in logs.glob("*.log") if path.name != "tansu.log"
    }
    assert {"ingest.log", "query.log", "archiver.log", "projector.log"} <= set(texts)
    chatter = re.compile(r" (DEBUG|INFO) (kafka|aiokafka|faust|mode|httpx|httpcore)[.:]")
    for name, text in texts.items():
        for noise in ("ECONNREFUSED", "Traceback", "RuntimeDirWarning", "\x1b["):
            assert noise not in text, f"{name}:\n{text[-3000:]}"
        assert not chatter.search(text), f"{name}:\n{text[-3000:]}"
