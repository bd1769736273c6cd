"""How many malloc arenas a worker process may use (``TENURE_MALLOC_ARENAS``).

glibc gives each thread that allocates its own arena, up to eight per core. A worker's
threads (the event loop, the database pool's, the derive and publish threads) each free
memory into a different arena, and the freed space of one arena is not reused by another:
the process's resident memory grows past its live heap (measured at 1,000,000 persons: the
projector's largest RSS was 545 MiB with glibc's default and 432 MiB with two arenas, apply
and derive as fast; ``BENCHMARKS.md``, "Scale results (2026-11-27, session 8)").
``mallopt(M_ARENA_MAX, n)`` early in the process caps it; the environment variable
``MALLOC_ARENA_MAX``, when set, is glibc's own and wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena limit (glibc ``malloc.h``)."""


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap this process's malloc arenas at ``arenas`` (0: leave glibc's default); return
    whether the cap is in force (False on a C library without ``mallopt``, or when
    ``MALLOC_ARENA_MAX`` is set, which glibc already applied)."""
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_ARENA_MAX, arenas))
    if not done:
        log.warning("could not limit malloc arenas to %d (mallopt refused)", arenas)
    return done
