"""`tenure up` as a process a test can start, stop, restart and fault."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tenure.platform.status import PlatformStatus, read_status
from tests.integration.platform_run import alive


def wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    """Block until ``pid`` is gone."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still runs"
        time.sleep(0.05)


@dataclass
class PlatformProcess:
    """One `tenure up` (its children in the status file) with a fixed state dir and ports."""

    state_dir: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    seen_pids: set[int] = field(default_factory=set)

    def start(self, timeout_s: float = 120.0) -> PlatformStatus:
        """Start `tenure up` and wait until it wrote its status."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tenure.cli.app", "up"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = read_status(self.state_dir)
            if status is not None and status.pid == self.process.pid:
                self.seen_pids.update(status.processes.values())
                return status
            assert self.process.poll() is None, self.log_tail()
            time.sleep(0.2)
        raise AssertionError(f"tenure up wrote no status in {timeout_s} s:\n{self.log_tail()}")

    @property
    def status(self) -> PlatformStatus:
        """The status file as it is now."""
        status = read_status(self.state_dir)
        assert status is not None, self.log_tail()
        self.seen_pids.update(status.processes.values())
        return status

    def pid_of(self, part: str) -> int:
        """The process id of ``part`` (``projector``, ``postgres``, ``broker``, ...) now."""
        return self.status.processes[part]

    def wait_restarted(self, part: str, old_pid: int, timeout_s: float = 60.0) -> int:
        """Block until the supervisor runs ``part`` again under a new pid; return it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid = self.status.processes.get(part)
            if pid and pid != old_pid and alive(pid):
                return pid
            time.sleep(0.1)
        raise AssertionError(f"{part} was not restarted in {timeout_s} s:\n{self.log_tail()}")

    def signal(self, part: str, sig: signal.Signals) -> int:
        """Send ``sig`` to ``part``'s process group; return the pid it had."""
        pid = self.pid_of(part)
        os.killpg(pid, sig)
        return pid

    def stop(self, timeout_s: float = 90.0) -> int:
        """Stop `tenure up` as Ctrl-C would; return its exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"tenure up did not stop in {timeout_s} s") from None

    def close(self) -> None:
        """Stop whatever is left, whatever happened (no orphan survives a test)."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.stop()
            except AssertionError:
                pass
        for pid in self.seen_pids:
            if alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of `tenure up`'s own log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
