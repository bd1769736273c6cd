"""TENURE_MALLOC_ARENAS: a worker process's threads share at most that many malloc arenas.

Each case runs in a child process (the cap is process-wide and cannot be undone) whose
threads allocate, then counts the arenas glibc reports (``malloc_info``).
"""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
import textwrap

import pytest

from tenure.config import TenureConfig

CHILD = textwrap.dedent(
    """
    import ctypes, ctypes.util, os, sys, tempfile, threading
    from tenure.runtime.malloc_arenas import limit_malloc_arenas

    capped = limit_malloc_arenas(int(sys.argv[1]))
    kept = []
    alive = threading.Barrier(8)  # every thread holds its arena until all have allocated

    def allocate():
        kept.extend(bytearray(50_000) for _ in range(20))  # malloc, not pymalloc or mmap
        alive.wait()

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.fclose.argtypes = (ctypes.c_void_p,)
    path = os.path.join(tempfile.mkdtemp(), "malloc.xml")
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(capped, open(path).read().count("<heap nr="))
    """
)


def _glibc() -> bool:
    name = ctypes.util.find_library("c")
    return name is not None and hasattr(ctypes.CDLL(name), "malloc_info")


def _arenas(limit: int) -> tuple[bool, int]:
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_ARENA_MAX from the caller
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(limit)],
        capture_output=True, text=True, check=True, env=env, cwd=sys.path[0] or None,
    ).stdout.split()  # fmt: skip
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not _glibc(), reason="arena limits are glibc's")
def test_threads_share_the_capped_arenas() -> None:
    assert _arenas(2) == (True, 2)


@pytest.mark.skipif(not _glibc(), reason="arena limits are glibc's")
def test_zero_leaves_glibc_default() -> None:
    capped, arenas = _arenas(0)
    assert not capped
    assert arenas > 2  # each allocating thread got an arena of its own


def test_setting_defaults_to_two_and_refuses_negative() -> None:
    assert TenureConfig.from_env({}).malloc_arenas == 2
    assert TenureConfig.from_env({"TENURE_MALLOC_ARENAS": "0"}).malloc_arenas == 0
    with pytest.raises(ValueError, match="TENURE_MALLOC_ARENAS must not be negative"):
        TenureConfig.from_env({"TENURE_MALLOC_ARENAS": "-1"})
