"""A child process's share of the CPU when the machine is busy.

Every process ``tenure up`` starts is a session of its own (:class:`~tenure.runtime.process.
ManagedProcess`), and Linux with autogroup scheduling on (``/proc/sys/kernel/
sched_autogroup_enabled``, the default of most distributions) shares the CPU between busy
*sessions* first: the ingest API, the derive stage and Postgres with all its backends each
get one equal share, whatever their threads or their own nice values. A process's nice then
only ranks it among the threads of its own session, so ``nice``/``renice`` does nothing for
the platform; the session's autogroup nice (``/proc/<pid>/autogroup``) is what counts.

:func:`lower_priority` sets it (or, with autogroup off, the process's nice): a positive
value, which needs no privilege, gives the session a smaller share only while the CPU is
contended; an idle machine runs it at full speed.

Postgres is one scheduling session however many clients it serves: its server processes
(one per client session) share that session's part of the CPU, ranked by their own nice
values. :func:`lower_database_session` lowers one of them, so a lowered process's statements
yield inside Postgres too (a server on this machine only).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import psycopg

from tenure.config import MAX_NICE

log = logging.getLogger(__name__)

AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")
_WEIGHTS = (
    1024,
    820,
    655,
    526,
    423,
    335,
    272,
    215,
    172,
    137,
    110,
    87,
    70,
    56,
    45,
    36,
    29,
    23,
    18,
    15,
)
"""The kernel's scheduling weight of nice 0-19 (``sched_prio_to_weight``)."""


def cpu_weight(nice: int) -> int:
    """The scheduler's weight of nice ``nice`` (0-19; nice 0 is 1024): a share under
    contention is weight over the sum of the busy weights. Container runtimes take the same
    scale (compose's ``cpu_shares``)."""
    return _WEIGHTS[nice]


def autogroup_scheduling() -> bool:
    """Whether the kernel shares the CPU between sessions (autogroup) first."""
    try:
        return AUTOGROUP_SWITCH.read_text().strip() == "1"
    except OSError:
        return False


_AUTOGROUP_LINE = re.compile(r"^/autogroup-\d+ nice (-?\d+)$")


def autogroup_nice(text: str) -> int | None:
    """The nice value in the text of a ``/proc/<pid>/autogroup`` file (``None`` when it names
    no autogroup).

    The kernel writes ``/autogroup-<id> nice <n>`` for a process in a session's autogroup and
    nothing for one in the default group (a session that predates autogroup, or a process in
    a cgroup of its own), whose tasks compete one by one with their own nice values.
    """
    match = _AUTOGROUP_LINE.match(text.strip())
    return int(match.group(1)) if match else None


def session_nice(pid: int) -> int | None:
    """The autogroup nice of ``pid``'s session (``None``: no autogroup to read)."""
    try:
        text = Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return None
    return autogroup_nice(text)


def effective_nice(pid: int) -> int | None:
    """The nice value that decides ``pid``'s CPU share against the platform's other
    processes: its session's autogroup nice when it runs in one, else its own (``None``: no
    such process)."""
    try:
        if autogroup_scheduling():
            nice = session_nice(pid)
            if nice is not None:
                return nice
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


def lower_priority(pid: int, nice: int) -> bool:
    """Give the session led by ``pid`` the CPU share of nice ``nice`` (0-19) under contention.

    Returns whether it took effect; a kernel or permission that refuses it is logged and
    leaves the process at its share (the platform works either way, views are only less
    fresh under overload).
    """
    if _checked_nice(nice) == 0:
        return True
    try:
        if autogroup_scheduling() and session_nice(pid) is not None:
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))
            return True
    except OSError as exc:
        return _refused(f"pid {pid}", nice, exc)
    return _renice(pid, nice, f"pid {pid}")  # threads it starts later inherit it


def lower_database_session(conn: psycopg.Connection[Any], nice: int) -> bool:
    """Give the Postgres server process of ``conn``'s session the nice value ``nice`` (0-19).

    Postgres runs every session in a server process of its own, all in the postmaster's
    scheduling session, so their nice values rank them among each other: a lowered session's
    statements yield inside Postgres to the other sessions' while the CPU is contended. Only
    when that process is a ``postgres`` process on this machine (a server elsewhere has its
    own process ids; nothing is changed then); never the autogroup, which is all of
    Postgres's. Returns whether it took effect. Leaves ``conn`` idle (a pool's
    ``configure`` hook).
    """
    _checked_nice(nice)
    row = conn.execute(
        "SELECT pid, extract(epoch FROM backend_start)::float8 FROM pg_stat_activity"
        " WHERE pid = pg_backend_pid()"
    ).fetchone()
    conn.commit()
    if nice == 0 or row is None:
        return nice == 0
    pid, backend_start = int(row[0]), float(row[1])
    if not is_local_backend(pid, backend_start):
        return False
    return _renice(pid, nice, "this database session")


SAME_PROCESS_START_S = 5.0
"""How far apart the server's ``backend_start`` and the local process's start may be for the
two to be the one process (both are taken at the fork; ``/proc`` counts clock ticks)."""


def is_local_backend(pid: int, backend_start: float) -> bool:
    """Whether ``pid`` on this machine is the ``postgres`` process that the server says
    started at ``backend_start`` (epoch seconds): a server elsewhere has its own process ids,
    and a local ``postgres`` with the same pid started at another time is not this session."""
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return False
        started = process_started_at(pid)
    except OSError:  # no such process on this machine
        return False
    return abs(started - backend_start) <= SAME_PROCESS_START_S


def process_started_at(pid: int) -> float:
    """When process ``pid`` started, in epoch seconds (:class:`OSError`: no such process).

    ``/proc/<pid>/stat``'s 22nd field counts clock ticks from boot; ``/proc/stat``'s
    ``btime`` is the boot time.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[19])  # field 22; fields[0] is field 3 (the state)
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _checked_nice(nice: int) -> int:
    """``nice`` when it lowers priority (0-19); otherwise :class:`ValueError`."""
    if not 0 <= nice <= MAX_NICE:
        raise ValueError(f"a nice value that lowers priority is 0-{MAX_NICE}, got {nice}")
    return nice


def _renice(pid: int, nice: int, what: str) -> bool:
    """Set process ``pid``'s own nice value; whether the kernel allowed it."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError as exc:
        return _refused(what, nice, exc)
    return True


def _refused(what: str, nice: int, exc: OSError) -> bool:
    """Log that the kernel refused to lower ``what`` to ``nice``; always False."""
    log.warning("could not lower the CPU priority of %s to nice %s: %s", what, nice, exc)
    return False
