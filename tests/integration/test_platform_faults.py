"""`tenure up` under Postgres faults, a failing recovery step, and what `ps` shows.

Real processes throughout: the supervisor, its embedded Postgres and broker, the services
and workers, the demo feeder. A fault is a signal to a process found in the status file.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tenure.sdk.producer import TenureProducer
from tests.factories import make_event
from tests.integration.pipeline import wait_for_archive
from tests.integration.platform_run import (
    alive,
    read_status,
    running_platform,
    tenure,
    wait_for_status,
)

pytestmark = pytest.mark.soak  # a fault run (`make test-faults`), beside the fault matrix

Running = tuple[dict[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def platform(scratch_dir: Path, postgres_server: object) -> Iterator[Running]:
    """One `tenure up --demo` for the module (a start costs ~10 s); the tests run in file
    order and each reads the current status (process ids change with restarts)."""
    with running_platform(scratch_dir, "--demo") as running:
        yield running


def _current(platform: Running) -> Running:
    env, started = platform
    status = read_status(env)
    assert status is not None, "tenure up is not running"
    return env, started | status


def _activations(tag: str, n: int, source: str) -> list[dict[str, Any]]:
    return [
        make_event(
            "device.activated",
            source=source,
            data={"device_id": f"{tag}-d{i}", "person_id": f"{tag}-p{i}", "product": "watch"},
        )
        for i in range(n)
    ]


def _timed_get(url: str, timeout: float = 5) -> tuple[int, float, httpx.Response]:
    started = time.monotonic()
    reply = httpx.get(url, timeout=timeout)
    return reply.status_code, time.monotonic() - started, reply


def _token(env: dict[str, str], scope: str = "ingest") -> str:
    made = tenure("token", "create", "--producer", f"faults-{scope}", "--scope", scope, env=env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _projected(database_url: str, tag: str, timeout: float = 60) -> tuple[int, int]:
    """Wait until the read models hold the tag's devices and persons; return their counts."""
    deadline = time.monotonic() + timeout
    counts = (0, 0)
    while time.monotonic() < deadline:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM devices WHERE device_id LIKE %(p)s),"
                " (SELECT count(*) FROM persons WHERE person_id LIKE %(p)s)",
                {"p": f"{tag}-%"},
            ).fetchone()
        assert row is not None
        counts = (int(row[0]), int(row[1]))
        if counts[0] and counts[0] == counts[1]:
            return counts
        time.sleep(0.5)
    return counts


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().split(")")[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def _listen_addresses(port: int) -> set[str]:
    """The IPv4 addresses something listens on at ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_no_secret_on_a_command_line_and_metrics_on_loopback(platform: Running) -> None:
    env, status = _current(platform)
    password = Path(env["TENURE_STATE_DIR"], "postgres", "password").read_text().strip()
    demo = status["processes"]["demo"]
    pids = _descendants(status["supervisor"].pid)
    assert demo in pids and status["processes"]["postgres"] in pids
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        assert "tnr_" not in argv and password not in argv, argv
    token = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{demo}/environ").read_text().split("\0")
        if "=" in item
    )["TENURE_TOKEN"]
    assert token.startswith("tnr_")  # the demo got its token from the environment ...
    sent = tenure(  # ... and `tenure simulate` takes it from there
        *("simulate", "--people", "3", "--days", "5", "--as-fast-as-possible"),
        "--no-print-truth",
        env=env | {"TENURE_TOKEN": token},
    )
    assert sent.returncode == 0 and "rejected 0" in sent.stdout, sent.stdout + sent.stderr
    assert " accepted 0 " not in sent.stdout
    assert status["database_url"].startswith("postgresql://postgres:")
    status_file = Path(env["TENURE_STATE_DIR"], "run", "status.json")
    assert status_file.stat().st_mode & 0o777 == 0o600
    for name, url in status["metrics_urls"].items():
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert _listen_addresses(port) == {"127.0.0.1"}, name


def _wait_for_readiness(metrics_url: str, worker: str, value: float) -> None:
    """Wait until ``worker`` reports ``tenure_worker_ready`` ``value`` (at most 20 s)."""
    deadline = time.monotonic() + 20
    prefix = f'tenure_worker_ready{{worker="{worker}"}} '
    while True:
        text = httpx.get(metrics_url, timeout=5).text
        seen = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
        if seen == [value]:
            return
        assert time.monotonic() < deadline, (worker, seen, value)
        time.sleep(0.2)


def test_postgres_killed_under_tenure_up_is_restarted_and_everything_recovers(
    platform: Running,
) -> None:
    env, status = _current(platform)
    ingest, query = status["ingest_url"], status["query_url"]
    headers = {"Authorization": f"Bearer {_token(env)}"}
    read_headers = {"Authorization": f"Bearer {_token(env, 'read')}"}
    tag = uuid.uuid4().hex[:8]
    source = f"urn:tenure:pgfault:{tag}"
    before, during, after = (
        _activations(f"{tag}-{phase}", 20, source) for phase in ("a", "b", "c")
    )
    reply = httpx.post(f"{ingest}/v1/events", json=before, headers=headers, timeout=30)
    assert reply.status_code == 200 and reply.json()["accepted"] == 20
    for base in (ingest, query):
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    workers = {name: status["processes"][name] for name in ("archiver", "projector")}
    supervisor = status["supervisor"]
    postgres_pid = status["processes"]["postgres"]

    # Hold the supervisor so that the outage lasts long enough to look at it.
    os.kill(supervisor.pid, signal.SIGSTOP)
    try:
        os.kill(postgres_pid, signal.SIGKILL)
        while alive(postgres_pid):
            time.sleep(0.05)
        for base in (ingest, query):
            code, seconds, _ = _timed_get(f"{base}/healthz")
            assert code == 200 and seconds < 2.0, (base, code, seconds)
            code, seconds, reply = _timed_get(f"{base}/readyz")
            assert code == 503 and seconds < 5.0, (base, code, seconds)
            assert "database" in reply.json()["reasons"][0]
        started = time.monotonic()
        reply = httpx.post(f"{ingest}/v1/events", json=during[:1], headers=headers, timeout=30)
        assert reply.status_code == 503 and reply.headers["Retry-After"], reply.text
        assert time.monotonic() - started < 10
        reply = httpx.get(f"{query}/v1/persons", headers=read_headers, timeout=30)
        assert reply.status_code == 503, reply.text
        # Events keep arriving through Kafka (SDK -> validator, no database): the archiver
        # and the projector must wait for Postgres, not crash.
        producer = TenureProducer(status["kafka_bootstrap"])
        try:
            assert producer.send_all(during) == 20
        finally:
            producer.close()
        time.sleep(4)  # the workers meet the dead database
        for name in workers:  # ... and wait for it, reporting not ready
            _wait_for_readiness(status["metrics_urls"][name], name, 0.0)
    finally:
        os.kill(supervisor.pid, signal.SIGCONT)
    resumed = time.monotonic()

    not_ready: dict[str, float] = {}
    while len(not_ready) < 2:
        assert time.monotonic() - resumed < 60, "the services never became ready again"
        for name, base in (("ingest", ingest), ("query", query)):
            code, seconds, _ = _timed_get(f"{base}/healthz")
            assert code == 200 and seconds < 2.0, (base, code, seconds)
            if name not in not_ready and httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                not_ready[name] = time.monotonic() - resumed
        time.sleep(0.1)
    recovered = wait_for_status(env, lambda s: s["postgres_restarts"] == 1, timeout=30)
    assert recovered["processes"]["postgres"] != postgres_pid
    restarted = [
        line for line in status["log"].read_text().splitlines() if "Postgres is back" in line
    ]
    print(f"\n{restarted}; ready again after SIGCONT of the supervisor: {not_ready}")
    assert max(not_ready.values()) < 10

    reply = httpx.post(f"{ingest}/v1/events", json=after, headers=headers, timeout=30)
    assert reply.status_code == 200 and reply.json()["accepted"] == 20
    ids = wait_for_archive(status["database_url"], source, 60, timeout=60)
    assert sorted(ids) == sorted(e["id"] for e in before + during + after)  # lost: 0
    for phase in ("a", "b", "c"):
        assert _projected(status["database_url"], f"{tag}-{phase}") == (20, 20), phase
    # The workers waited for the database: never restarted.
    logs = Path(env["TENURE_STATE_DIR"]) / "logs"
    assert {name: recovered["processes"][name] for name in workers} == workers, {
        name: (logs / f"{name}.log").read_text()[-4000:] for name in workers
    }
    for name in workers:  # ready again once every waiting part of them went on
        _wait_for_readiness(recovered["metrics_urls"][name], name, 1.0)
    assert supervisor.poll() is None


def test_the_supervisor_survives_a_failing_recovery_step(platform: Running) -> None:
    env, status = _current(platform)
    supervisor = status["supervisor"]
    postgres_pid = status["processes"]["postgres"]
    # A stopped postmaster accepts no new connection: the recovery's republish step
    # (which needs the ledger) fails after its connect timeout.
    os.kill(postgres_pid, signal.SIGSTOP)
    try:
        os.kill(status["processes"]["broker"], signal.SIGKILL)
        stuck = wait_for_status(
            env,
            lambda s: s["broker_recoveries"] == 1 and s["pending_recovery"][:1] == ["republish"],
            timeout=90,
        )
        assert stuck["pending_recovery"] == ["republish", "catch-up"]
        assert supervisor.poll() is None
        time.sleep(3)  # a retry while the database is still stopped fails too
        assert supervisor.poll() is None
    finally:
        os.kill(postgres_pid, signal.SIGCONT)
    wait_for_status(env, lambda s: s["pending_recovery"] == [], timeout=60)
    assert "recovery step 'republish' failed" in status["log"].read_text()

    headers = {"Authorization": f"Bearer {_token(env)}"}
    source = f"urn:tenure:recovery:{uuid.uuid4().hex[:8]}"
    events = _activations(uuid.uuid4().hex[:8], 10, source)
    answer = "no answer"
    for _ in range(60):  # the services restarted with the broker may still be starting
        try:
            reply = httpx.post(f"{status['ingest_url']}/v1/events", json=events, headers=headers)
        except httpx.TransportError as exc:
            answer = repr(exc)
        else:
            answer = f"{reply.status_code} {reply.text}"
            if reply.status_code == 200:
                break
        time.sleep(1)
    assert answer.startswith("200 "), answer
    assert len(wait_for_archive(status["database_url"], source, 10, timeout=60)) == 10
    assert supervisor.poll() is None
