"""Managed child processes leave no orphans and fail clearly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tenure.runtime.process import ManagedProcess, StartupError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[1].split()[0] != "Z"


def test_stop_takes_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    proc = ManagedProcess(
        "family",
        ["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {pids}; wait"],
        tmp_path / "family.log",
        stop_signal=signal.SIGTERM,
    )
    proc.start()
    deadline = time.monotonic() + 5
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pids.read_text())
    proc.stop(timeout=1)  # the shell ignores SIGTERM: it must be killed, grandchild too
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.alive()
    assert not _alive(grandchild)


def test_a_process_that_exits_while_starting_is_a_clear_error(tmp_path: Path) -> None:
    proc = ManagedProcess("broken", ["sh", "-c", "echo boom; exit 3"], tmp_path / "broken.log")
    proc.start()
    with pytest.raises(StartupError, match=r"exited with code 3[\s\S]*boom"):
        proc.wait_ready(lambda: False, timeout=10)
