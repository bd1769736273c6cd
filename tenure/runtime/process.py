"""Child processes that Tenure starts and must stop again: brokers, Postgres, services."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tenure.errors import TenureError
from tenure.runtime.cpu_priority import lower_priority

log = logging.getLogger(__name__)


class StartupError(TenureError, RuntimeError):
    """A managed process did not become ready; the message says why and where its log is."""


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file (empty when it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ManagedProcess:
    """A child process in its own process group, with its output in a log file.

    Stopping sends ``stop_signal`` to the whole group, waits, then kills what is left, so
    no grandchild outlives it.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        cpu_nice: int = 0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.cpu_nice = cpu_nice
        """Its session's CPU priority under contention (:func:`lower_priority`; 0: equal)."""
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        """Start the process (its stdout and stderr go to the log file)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                start_new_session=True,
            )
        lower_priority(self.popen.pid, self.cpu_nice)
        log.info("started %s (pid %s), log %s", self.name, self.popen.pid, self.log_path)

    def alive(self) -> bool:
        """Tell whether the process is still running."""
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        """Poll ``probe`` until it is true; raise :class:`StartupError` on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.popen.returncode if self.popen else None
                raise StartupError(
                    f"{self.name} exited with code {code} while starting; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            try:
                if probe():
                    return
            except Exception as exc:  # probe failures mean "not yet"
                log.debug("%s not ready yet: %s", self.name, exc)
            time.sleep(0.1)
        self.stop()
        raise StartupError(
            f"{self.name} was not ready after {timeout:.0f} s; "
            f"log {self.log_path}:\n{tail(self.log_path)}"
        )

    def kill(self) -> None:
        """Kill the process group at once (SIGKILL), as a crash would."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process group gracefully, killing it after ``timeout`` seconds."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored %s; killing it", self.name, self.stop_signal.name)
        # Whatever is left of the group (grandchildren included) goes now.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()


class ProcessBackedServer:
    """A server Tenure runs as one :class:`ManagedProcess`: stop, kill and liveness."""

    process: ManagedProcess | None = None
    stop_timeout: float = 30.0

    def stop(self) -> None:
        """Stop the server gracefully (killing it after ``stop_timeout`` seconds)."""
        if self.process:
            self.process.stop(timeout=self.stop_timeout)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self.process:
            self.process.kill()

    def alive(self) -> bool:
        """Tell whether the server process runs."""
        return self.process is not None and self.process.alive()
