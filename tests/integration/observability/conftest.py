"""One observed run shared by the metrics, dashboard-query and browser tests.

`tenure up` (embedded broker, the harness's Postgres) runs every process of the platform;
a real Prometheus server (Debian package `prometheus`) scrapes all of them every second
while a simulated population, rejected events and dead letters flow through; then
`tenure replay --metrics-port` rebuilds the read models while Prometheus scrapes it too.
The tests then read Prometheus, Postgres and the processes' /metrics as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaProducer

from tenure.config import OS_CHOSEN_PORTS
from tenure.contract.topics import DEVICE_EVENTS, SDK_EVENTS
from tenure.platform.status import read_status
from tenure.runtime.postgres import EmbeddedPostgres
from tenure.runtime.process import free_port
from tenure.storage.summary_reads import pipeline_state
from tests.factories import make_event

OUTPUT = Path(os.environ.get("TENURE_TEST_OUTPUT", "tests/artifacts"))
SCRAPED_PROCESSES = frozenset(
    {"ingest", "query", "archiver", "sdk-validator", "projector", "deriver", "follower", "replay"}
)
"""Every process the observed run scrapes: `tenure up`'s and `tenure replay --metrics-port`."""
"""Where the run leaves artefacts (the dashboard screenshot, Prometheus and platform logs)."""


@dataclass
class Observed:
    """What the observed run left for the tests to read."""

    env: dict[str, str]
    status: dict[str, Any]
    database_url: str
    prometheus_url: str
    """Empty when Prometheus is not installed: the PromQL tests skip (or fail under CI)."""
    evaluated_at: float
    read_token: str
    up_log: Path
    scrapes: list[tuple[str, str]] = field(default_factory=list)
    replay_metrics_url: str = ""

    def api(self, path: str, groups: str) -> dict[str, Any]:
        """GET a query-service endpoint with ``groups=`` and the run's read token; 200 asserted."""
        reply = httpx.get(
            f"{self.status['query_url']}{path}",
            params={"groups": groups},
            headers={"Authorization": f"Bearer {self.read_token}"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


def _tenure(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _prometheus_config(targets: dict[str, str], path: Path) -> None:
    jobs = []
    for job, url in sorted(targets.items()):
        hostport = url.removeprefix("http://").split("/", 1)[0]
        jobs.append(
            f"  - job_name: {job}\n    static_configs:\n      - targets: [{json.dumps(hostport)}]\n"
        )
    path.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {json.dumps(str(ALERT_RULES))}\n"
        "scrape_configs:\n" + "".join(jobs)
    )


ALERT_RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
"""The production alert rules: the observed Prometheus evaluates them on the real metrics."""

PROMETHEUS_MISSING = "the `prometheus` binary is missing (apt-get install prometheus)"


def _start_prometheus(
    targets: dict[str, str], workdir: Path
) -> tuple[subprocess.Popen[bytes] | None, str]:
    """A real Prometheus scraping ``targets`` every second (``None, ""`` when not installed)."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None, ""
    workdir.mkdir(parents=True, exist_ok=True)
    _prometheus_config(targets, workdir / "prometheus.yml")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=open(workdir / "prometheus.log", "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, (workdir / "prometheus.log").read_text()[-2000:]
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("prometheus did not become ready")


def _wait_until_scraped(prometheus_url: str, jobs: set[str], timeout: float = 30) -> None:
    """Until Prometheus has scraped every job successfully (the baseline before the load)."""
    deadline = time.monotonic() + timeout
    healthy: set[str] = set()
    while time.monotonic() < deadline:
        targets = httpx.get(f"{prometheus_url}/api/v1/targets", timeout=5).json()
        healthy = {
            t["labels"]["job"] for t in targets["data"]["activeTargets"] if t["health"] == "up"
        }
        if jobs <= healthy:
            time.sleep(1.5)  # one more scrape each: a baseline sample before any event
            return
        time.sleep(0.3)
    raise TimeoutError(f"Prometheus scraped only {sorted(healthy)} of {sorted(jobs)}")


def _scrape_while(urls: dict[str, str], stop: threading.Event, into: list[tuple[str, str]]) -> None:
    """Scrape every process's /metrics every half second until ``stop`` (under load)."""
    while not stop.wait(0.5):
        for name, url in urls.items():
            try:
                into.append((name, httpx.get(url, timeout=2).text))
            except httpx.HTTPError:
                pass


def _send_rejects_and_dead_letters(status: dict[str, Any], token: str) -> None:
    """Rejected events at the ingest API; bad records on the SDK and a canonical topic."""
    source = f"urn:tenure:observed:{uuid.uuid4().hex[:8]}"
    bad = [
        {**make_event("device.used", source=source, n=1), "type": "device.teleported"},
        {**make_event("device.used", source=source, n=2), "data": {"duration_s": "long"}},
        {**make_event("device.used", source=source, n=3), "time": "2999-01-01T00:00:00Z"},
    ]
    reply = httpx.post(
        f"{status['ingest_url']}/v1/events",
        json=bad,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert reply.status_code == 422 and reply.json()["rejected"] == 3, reply.text
    producer = KafkaProducer(bootstrap_servers=status["kafka_bootstrap"])
    try:
        producer.send(SDK_EVENTS, key=b"k", value=b"not json at all")
        unknown = {**make_event("device.used", source=source, n=4), "type": "device.teleported"}
        producer.send(SDK_EVENTS, key=b"k", value=json.dumps(unknown).encode())
        producer.send(DEVICE_EVENTS, key=b"k", value=b'{"broken": ')
        producer.flush(timeout=30)
    finally:
        producer.close()


def _wait_for_projection(database_url: str, timeout: float = 120) -> None:
    """Until everything ingested is archived and projected and nothing is queued."""
    deadline = time.monotonic() + timeout
    stable = 0
    last: tuple[Any, ...] = ()
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM ingest_ledger), (SELECT count(*) FROM event_archive),"
                " (SELECT count(*) FROM persons), (SELECT count(*) FROM dirty_persons)"
                " + (SELECT count(*) FROM dirty_devices)"
            ).fetchone()
            assert counts is not None
            row = (*counts, pipeline_state(conn).transitions_unpublished)
        ledger, archived, persons, dirty, unpublished = row
        settled = archived >= ledger > 0 and persons > 0 and dirty == 0 and unpublished == 0
        stable = stable + 1 if settled and row == last else 0
        if stable >= 2:
            return
        last = row
        time.sleep(1.0)
    raise TimeoutError(f"projection did not settle: {last}")


def _metric_value(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _replay_with_metrics(env: dict[str, str], port: int, workdir: Path) -> subprocess.Popen[bytes]:
    args = ["replay", "--metrics-port", str(port), "--metrics-hold", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenure.cli.app", *args],
        env=env,
        stdout=open(workdir / "replay.log", "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, (workdir / "replay.log").read_text()[-2000:]
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
        except httpx.HTTPError:
            text = ""
        if _metric_value(text, "tenure_replay_running") == 0.0:
            return proc
        time.sleep(0.2)
    raise TimeoutError("the replay did not finish")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def observed(scratch_dir: Path, postgres_server: EmbeddedPostgres) -> Iterator[Observed]:
    """Run the platform under a simulated load, scraped by Prometheus; see the module doc."""
    name = f"observed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = postgres_server.url_for(name)
    workdir = scratch_dir / "observed"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TENURE_KAFKA_BOOTSTRAP"}
    env.update(
        TENURE_DATABASE_URL=database_url,
        TENURE_STATE_DIR=str(workdir / "state"),
        **OS_CHOSEN_PORTS,
    )
    up_log = workdir / "tenure-up.log"
    up = subprocess.Popen(
        [sys.executable, "-m", "tenure.cli.app", "up"],
        env=env,
        stdout=open(up_log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    prometheus: subprocess.Popen[bytes] | None = None
    replay: subprocess.Popen[bytes] | None = None
    children: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 120
        current = None
        while current is None and time.monotonic() < deadline:
            assert up.poll() is None, up_log.read_text()[-3000:]
            current = read_status(workdir / "state")
            time.sleep(0.3)
        assert current is not None, "tenure up did not start within 120 s"
        status = json.loads(current.to_json())
        children = status["processes"]
        replay_port = free_port()
        replay_url = f"http://127.0.0.1:{replay_port}/metrics"
        prometheus, prometheus_url = _start_prometheus(
            {**status["metrics_urls"], "replay": replay_url}, workdir / "prometheus"
        )
        if prometheus_url:
            _wait_until_scraped(prometheus_url, set(status["metrics_urls"]))
        token = _tenure("token", "create", "--producer", "observed", env=env).strip()
        read_token = _tenure(
            "token", "create", "--producer", "observed-reader", "--scope", "read", env=env
        ).strip()
        scrapes: list[tuple[str, str]] = []
        stop_scraping = threading.Event()
        scraper = threading.Thread(
            target=_scrape_while, args=(status["metrics_urls"], stop_scraping, scrapes)
        )
        scraper.start()
        try:
            _tenure(
                "simulate", "--ingest-url", status["ingest_url"], "--token", token,
                "--people", "60", "--days", "120", "--seed", "20261123",
                "--as-fast-as-possible", "--no-print-truth", "--batch-size", "100",
                env=env,
            )  # fmt: skip
            _send_rejects_and_dead_letters(status, token)
            _wait_for_projection(database_url)
        finally:
            stop_scraping.set()
            scraper.join()
        replay = _replay_with_metrics(env, replay_port, workdir)
        query_metrics = status["metrics_urls"]["query"]
        deadline = time.monotonic() + 20  # the business gauges are cached for a few seconds
        while (
            _metric_value(httpx.get(query_metrics, timeout=5).text, "tenure_replay_last_events")
            is None
        ):
            assert time.monotonic() < deadline, "the query service never reported the replay"
            time.sleep(0.5)
        time.sleep(2)  # Prometheus scrapes every second: let it see the finished replay
        evaluated_at = time.time()
        for name_, url in {**status["metrics_urls"], "replay": replay_url}.items():
            scrapes.append((name_, httpx.get(url, timeout=5).text))
        yield Observed(
            env=env,
            status=status,
            database_url=database_url,
            prometheus_url=prometheus_url,
            evaluated_at=evaluated_at,
            read_token=read_token,
            up_log=up_log,
            scrapes=scrapes,
            replay_metrics_url=replay_url,
        )
    finally:
        if replay is not None:
            _stop(replay, signal.SIGTERM, timeout=20)
        if prometheus is not None:
            _stop(prometheus, signal.SIGTERM, timeout=20)
        _stop(up)
        for pid in children.values():  # never leave a child of `tenure up` behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        OUTPUT.mkdir(parents=True, exist_ok=True)
        for log in (up_log, workdir / "prometheus" / "prometheus.log", workdir / "replay.log"):
            if log.exists():
                shutil.copy(log, OUTPUT / f"observed-{log.name}")
