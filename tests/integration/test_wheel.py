"""The wheel as users install it: built from the sources the Dockerfile copies, installed in a
clean venv without the test extra, run from outside the repository with no PYTHONPATH.

Every service and worker starts against the test Kafka and Postgres, one event goes through
ingest, the archiver and the projector, ``tenure replay`` exits 0, and every log line the
processes write is JSON (``TENURE_LOG_FORMAT=json``) without Kafka-client chatter.
Downloads come from the package index through pip's default cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tenure.runtime.broker import LocalBroker
from tenure.runtime.process import free_port
from tests.factories import make_event
from tests.integration.pipeline import wait_for_archive

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "tenure", "services", "streams", "schemas")
"""What the Dockerfile copies into its build stage."""
NOISY = ("ECONNREFUSED", "Traceback")
THIRD_PARTY = ("kafka", "aiokafka", "faust", "mode", "httpx", "httpcore")


@dataclass(frozen=True)
class Installed:
    """A clean venv with the wheel installed, and the output of building and installing it."""

    venv: Path
    wheel: Path
    build_output: str
    install_output: str

    def bin(self, name: str) -> str:
        """A console script or interpreter of the venv."""
        return str(self.venv / "bin" / name)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing at the source tree or the dev venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("TENURE_")
    }
    # pip's own notices (running as root in CI, a newer pip exists) are not the project's
    env.update(PIP_ROOT_USER_ACTION="ignore", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=_clean_env(**env), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=junk)
        else:
            shutil.copy2(REPO / name, src / name)
    dist = root / "dist"
    build_output = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(src)], cwd=root
    )
    (wheel,) = dist.glob("tenure-*.whl")
    venv = root / "venv"
    # no pip inside: this interpreter's pip installs into it (--python), without byte-compiling
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    install_output = _run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install",
         "--no-compile", str(wheel)],
        cwd=root,
    )  # fmt: skip
    return Installed(venv, wheel, build_output, install_output)


def test_building_and_installing_prints_no_warning(installed: Installed) -> None:
    for output in (installed.build_output, installed.install_output):
        lowered = output.lower()
        assert "deprecat" not in lowered and "warning" not in lowered, output


def test_the_wheel_carries_its_package_data(installed: Installed) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for package in ("tenure", "services", "streams", "schemas"):
        for path in (REPO / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                assert path.relative_to(REPO).as_posix() in names, path


def test_the_venv_runs_the_wheel_not_the_sources(installed: Installed, tmp_path: Path) -> None:
    where = _run([installed.bin("python"), "-c", "import tenure; print(tenure.__file__)"], tmp_path)
    assert Path(where.strip()).is_relative_to(installed.venv), where
    # the test extra (lifelines pulls numpy) is not there: numpy must be a dependency itself
    missing = subprocess.run(
        [installed.bin("python"), "-c", "import lifelines"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
    )
    assert missing.returncode != 0
    _run([installed.bin("python"), "-c", "import tenure.analytics.kaplan_meier"], tmp_path)
    version = _run([installed.bin("tenure"), "--version"], tmp_path)
    assert version.strip().startswith("tenure ") and "unknown" not in version


@dataclass
class Started:
    """A process of the installed ``tenure`` command, its stderr in a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def records(self) -> list[dict[str, str]]:
        """Every line the process logged, each parsed as JSON."""
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        parsed = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{self.name} logged a line that is not JSON: {line!r}")
            assert {"time", "level", "logger", "message"} <= set(record), line
            parsed.append(record)
        return parsed


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Started]]:
    started: list[Started] = []
    yield started
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()


def _wait_http(url: str, proc: Started, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.popen.poll() is None, f"{proc.name} exited:\n{proc.log.read_text()[-3000:]}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{proc.name} not ready at {url}:\n{proc.log.read_text()[-3000:]}")


@pytest.mark.kafka
@pytest.mark.postgres
def test_services_and_workers_run_from_the_wheel(
    installed: Installed,
    broker: LocalBroker,
    database_url: str,
    unique_source: str,
    processes: list[Started],
    tmp_path: Path,
) -> None:
    env = {
        "TENURE_KAFKA_BOOTSTRAP": broker.bootstrap,
        "TENURE_DATABASE_URL": database_url,
        "TENURE_STATE_DIR": str(tmp_path / "state"),
        "TENURE_LOG_FORMAT": "json",
        "TENURE_ALLOWED_LATENESS_S": "0",
    }
    workers = ("archiver", "projector", "sdk-validator")
    ports = {name: free_port() for name in ("ingest", "query", *workers)}
    commands = {
        "ingest": ["serve", "ingest", "--port", str(ports["ingest"])],
        "query": ["serve", "query", "--port", str(ports["query"])],
        "archiver": ["worker", "archiver", "--metrics-port", str(ports["archiver"])],
        **{name: ["worker", name, "--metrics-port", str(ports[name])] for name in workers},
    }
    for name, args in commands.items():
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:  # stdout too: nothing but JSON lines on either
            popen = subprocess.Popen(
                [installed.bin("tenure"), *args],
                cwd=tmp_path,
                env=_clean_env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(Started(name, popen, log))
    by_name = {p.name: p for p in processes}
    for name in ("ingest", "query"):
        _wait_http(f"http://127.0.0.1:{ports[name]}/healthz", by_name[name])
    for name in workers:
        _wait_http(f"http://127.0.0.1:{ports[name]}/metrics", by_name[name])

    token = _run(
        [installed.bin("tenure"), "token", "create", "--producer", "wheel"], tmp_path, **env
    )
    event = make_event("device.used", source=unique_source)
    reply = httpx.post(
        f"http://127.0.0.1:{ports['ingest']}/v1/events",
        json=[event],
        headers={"Authorization": f"Bearer {token.strip().splitlines()[-1]}"},
        timeout=30,
    )
    assert reply.status_code == 200 and reply.json()["accepted"] == 1, reply.text
    assert wait_for_archive(database_url, unique_source, 1) == [event["id"]]
    deadline = time.monotonic() + 60
    while "projector assigned" not in by_name["projector"].log.read_text():
        assert time.monotonic() < deadline, by_name["projector"].log.read_text()[-3000:]
        assert by_name["projector"].popen.poll() is None, by_name["projector"].log.read_text()
        time.sleep(0.2)

    replay = subprocess.run(
        [installed.bin("tenure"), "replay"],
        cwd=tmp_path,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    # the shared topics hold earlier tests' events too (poison records among them, which
    # the replay dead-letters with a warning): at least this test's event was replayed
    replayed = re.search(r"replayed (\d+) events", replay.stderr)
    assert replayed and int(replayed.group(1)) >= 1, replay.stderr

    for proc in processes:
        proc.popen.send_signal(signal.SIGTERM)
    for proc in processes:
        assert proc.popen.wait(timeout=30) is not None
    for proc in processes:
        records = proc.records()
        text = proc.log.read_text()
        assert not any(word in text for word in NOISY), f"{proc.name}:\n{text[-3000:]}"
        chatter = [
            r
            for r in records
            if r["logger"].split(".")[0] in THIRD_PARTY and r["level"] in ("DEBUG", "INFO")
        ]
        assert chatter == [], f"{proc.name}: {chatter[:5]}"
    assert any(r["logger"] == "uvicorn.error" for r in by_name["ingest"].records())
