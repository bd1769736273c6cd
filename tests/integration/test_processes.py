"""Managed child processes leave no orphans and fail clearly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tenure.runtime.cpu_priority import effective_nice, lower_priority, session_nice
from tenure.runtime.process import ManagedProcess, StartupError
from tests.integration.platform_run import cpu_nice


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
        # written whole, then renamed: the file never exists empty
        ["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {pids}.new; mv {pids}.new {pids}; wait"],
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


def test_a_lowered_process_gets_the_share_of_its_nice_and_no_other_does(tmp_path: Path) -> None:
    lowered = ManagedProcess("intake", ["sleep", "30"], tmp_path / "intake.log", cpu_nice=7)
    equal = ManagedProcess("derive", ["sleep", "30"], tmp_path / "derive.log")
    mine = cpu_nice(os.getpid())
    lowered.start()
    equal.start()
    try:
        assert lowered.pid is not None and equal.pid is not None
        assert cpu_nice(lowered.pid) == 7
        assert cpu_nice(equal.pid) == 0
        assert cpu_nice(os.getpid()) == mine  # its own session, not the starter's
    finally:
        lowered.stop(timeout=1)
        equal.stop(timeout=1)


def test_a_process_outside_any_session_autogroup_has_its_own_nice() -> None:
    # the kernel prints nothing in /proc/1/autogroup for init (the default group), as for a
    # CI runner's tests: such a process competes with its own nice value
    if session_nice(1) is None:
        assert effective_nice(1) == os.getpriority(os.PRIO_PROCESS, 1)
    else:  # a container whose init started a session of its own
        assert effective_nice(1) == session_nice(1)


@pytest.mark.parametrize("nice", [-1, 20])
def test_only_a_lower_priority_can_be_asked_for(nice: int) -> None:
    with pytest.raises(ValueError, match="0-19"):
        lower_priority(os.getpid(), nice)


def test_a_process_that_exits_while_starting_is_a_clear_error(tmp_path: Path) -> None:
    proc = ManagedProcess("broken", ["sh", "-c", "echo boom; exit 3"], tmp_path / "broken.log")
    proc.start()
    with pytest.raises(StartupError, match=r"exited with code 3[\s\S]*boom"):
        proc.wait_ready(lambda: False, timeout=10)
