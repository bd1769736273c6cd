"""Running ``tenure up`` as a real process for tests: start it, read its status, stop it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tenure.config import OS_CHOSEN_PORTS
from tenure.runtime.cpu_priority import effective_nice
from tenure.runtime.process import process_alive

alive = process_alive
"""Whether ``pid`` runs (a zombie counts as gone): ``tenure.runtime.process``."""


def tenure(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a ``tenure`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_status(env: dict[str, str]) -> dict[str, Any] | None:
    """``tenure status --json``, or ``None`` when no platform runs."""
    reply = tenure("status", "--json", env=env)
    return json.loads(reply.stdout) if reply.returncode == 0 else None


def wait_for_status(
    env: dict[str, str], done: Callable[[dict[str, Any]], bool], timeout: float = 90
) -> dict[str, Any]:
    """Poll the status file until ``done(status)``; return that status."""
    deadline = time.monotonic() + timeout
    status = read_status(env)
    while not (status and done(status)):
        assert time.monotonic() < deadline, f"status never got there; last: {status}"
        time.sleep(0.3)
        status = read_status(env)
    return status


@contextmanager
def running_platform(
    scratch_dir: Path, *up_args: str, **extra_env: str
) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """Run ``tenure up`` in a fresh state dir; yield its environment and status.

    The status also holds ``supervisor`` (the Popen), ``startup_seconds`` and ``log`` (the
    supervisor's output file). Whatever happens, nothing it started is left running.
    """
    state = scratch_dir / f"platform-{time.monotonic_ns()}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TENURE_KAFKA_BOOTSTRAP", "TENURE_DATABASE_URL", "TENURE_TOKEN")
    }
    env.update(
        TENURE_STATE_DIR=str(state),
        **OS_CHOSEN_PORTS,
        **extra_env,
    )
    log_path = scratch_dir / f"tenure-up-{state.name}.log"
    log = open(log_path, "ab")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenure.cli.app", "up", *up_args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    status: dict[str, Any] = {}
    try:
        while time.monotonic() - started < 120:
            current = read_status(env)
            if current is not None:
                status = current
                break
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert status, "tenure up did not report its status within 120 s"
        status["startup_seconds"] = time.monotonic() - started
        yield env, status | {"supervisor": proc, "log": log_path}
    finally:
        children = (read_status(env) or status).get("processes", {})
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # a test may have stopped it
            proc.send_signal(signal.SIGINT)  # stop it the way a user would
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in {**status.get("processes", {}), **children}.values():
            if alive(pid):  # never leave a child behind, whatever happened
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        log.close()


def cpu_nice(pid: int) -> int:
    """The nice value that decides ``pid``'s CPU share against other sessions."""
    nice = effective_nice(pid)
    assert nice is not None, f"no process {pid}"
    return nice


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def tcp_client_ports(pid: int) -> set[int]:
    """The local ports of ``pid``'s TCP sockets (``/proc/net/tcp``, ``tcp6``)."""
    inodes = _socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def database_session_nices(postgres_pid: int) -> dict[int, int]:
    """The nice value of each client session's server process of the Postgres server
    ``postgres_pid``, by the client's port (a backend's title names it: ``postgres: user db
    127.0.0.1(port) ...``)."""
    nices = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent != postgres_pid or "(" not in title:
            continue
        port = title.split("(", 1)[1].split(")", 1)[0]
        if port.isdigit():
            nices[int(port)] = os.getpriority(os.PRIO_PROCESS, int(entry.name))
    return nices
