"""A replay's pool worker ends when the replaying process is killed (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from tenure.runtime.process import process_alive

REPLAYING = textwrap.dedent(
    """
    import multiprocessing, os, time
    from concurrent.futures import ProcessPoolExecutor
    from tenure.projection.replay_workers import exit_with_parent

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)  # the worker is busy, as with a long seq range
    time.sleep(120)
    """
)


def test_a_pool_worker_ends_when_its_replaying_process_is_killed() -> None:
    replaying = subprocess.Popen(
        [sys.executable, "-c", REPLAYING], stdout=subprocess.PIPE, text=True
    )
    try:
        assert replaying.stdout is not None
        worker = int(replaying.stdout.readline())
        assert process_alive(worker)
        os.kill(replaying.pid, signal.SIGKILL)
        replaying.wait()
        deadline = time.monotonic() + 15
        while process_alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(worker), "the orphaned pool worker kept running"
    finally:
        replaying.kill()
        replaying.wait()
