"""Real servers for the benchmarks: embedded Postgres, and a broker (Tansu or Apache Kafka).

One Postgres server serves a whole run (a fresh, migrated database per benchmark); each Kafka
benchmark gets a fresh broker, so topics hold exactly the records that benchmark wrote.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tenure.eventlog.admin import ensure_topics
from tenure.runtime.apache_kafka import ApacheKafkaBroker, java_and_maven_missing
from tenure.runtime.broker import LocalBroker
from tenure.runtime.postgres import EmbeddedPostgres
from tenure.runtime.tansu import TansuBroker
from tenure.storage.migrations import migrate

BROKERS: tuple[str, ...] = ("tansu", "apache-kafka")
"""Broker kinds ``--broker`` accepts."""
PARTITIONS = 4
"""Partitions of every topic, as ``tenure up`` creates them by default."""


class Unavailable(RuntimeError):
    """A server the benchmark needs cannot run on this machine (the message says why)."""


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A world-traversable temporary folder (the Postgres server user must enter it)."""
    path = Path(tempfile.mkdtemp(prefix="tenure-bench-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Servers:
    """Starts what the benchmarks need, lazily, and stops all of it on ``close``."""

    def __init__(self, root: Path, broker_kind: str = "tansu") -> None:
        if broker_kind not in BROKERS:
            raise ValueError(f"broker must be one of {BROKERS}, not {broker_kind!r}")
        self.root = root
        self.broker_kind = broker_kind
        self._postgres: EmbeddedPostgres | None = None
        self._brokers: list[LocalBroker] = []

    @property
    def postgres(self) -> EmbeddedPostgres:
        """The run's Postgres server (started on first use)."""
        if self._postgres is None:
            server = EmbeddedPostgres(self.root / "postgres")
            server.start()
            self._postgres = server
        return self._postgres

    def fresh_database(self) -> str:
        """Create and migrate a new database; return its URL."""
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.postgres.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.postgres.url_for(name)
        with psycopg.connect(url) as conn:
            migrate(conn)
        return url

    def fresh_broker(self) -> LocalBroker:
        """Start a new broker of the chosen kind with Tenure's topics created."""
        folder = self.root / f"{self.broker_kind}-{len(self._brokers)}"
        broker: LocalBroker
        if self.broker_kind == "apache-kafka":
            missing = java_and_maven_missing()
            if missing:
                raise Unavailable(missing)
            broker = ApacheKafkaBroker(folder, partitions=PARTITIONS)
        else:
            broker = TansuBroker(folder)
        broker.start()
        self._brokers.append(broker)
        ensure_topics(broker.bootstrap, partitions=PARTITIONS)
        return broker

    def stop_broker(self, broker: LocalBroker) -> None:
        """Stop a broker started by :meth:`fresh_broker` before the run ends."""
        broker.stop()
        self._brokers.remove(broker)

    def close(self) -> None:
        """Stop every server this object started."""
        for broker in self._brokers:
            broker.stop()
        self._brokers.clear()
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None


@contextmanager
def servers(broker_kind: str = "tansu") -> Iterator[Servers]:
    """Servers for one run, in a scratch folder removed afterwards."""
    with scratch_dir() as root:
        s = Servers(root, broker_kind)
        try:
            yield s
        finally:
            s.close()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux ``/proc``; just ``[pid]`` elsewhere)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(_children(p))
    return found


def cpu_seconds(pids: Iterable[int]) -> float | None:
    """User + system CPU seconds the processes used so far (``None`` without ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    seen = False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seen = True
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick if seen else None


class CpuMeter:
    """CPU seconds used by named process trees between :meth:`start` and :meth:`stop`.

    With ``own_name`` the benchmark's own process (not its children, which are the servers)
    is measured too, under that name.
    """

    def __init__(self, roots: dict[str, int | None], own_name: str | None = None) -> None:
        self.roots = {name: pid for name, pid in roots.items() if pid is not None}
        self.own_name = own_name
        self._before: dict[str, float | None] = {}

    def _sample(self) -> dict[str, float | None]:
        sample = {name: cpu_seconds(process_tree(pid)) for name, pid in self.roots.items()}
        if self.own_name:
            sample[self.own_name] = cpu_seconds([os.getpid()])
        return sample

    def start(self) -> None:
        """Take the first sample."""
        self._before = self._sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds per name since :meth:`start` (names without ``/proc`` data omitted)."""
        after = self._sample()
        used: dict[str, float] = {}
        for name, value in after.items():
            before = self._before.get(name)
            if value is not None and before is not None:
                used[name] = round(value - before, 2)
        return used


def peak_rss_mib(pid: int) -> float | None:
    """The most resident memory process ``pid`` has used so far (``VmHWM``), in MiB
    (``None`` without ``/proc``)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def broker_pid(broker: LocalBroker) -> int | None:
    """The broker's process id, when Tenure started it."""
    process = getattr(broker, "process", None)
    pid = getattr(process, "pid", None)
    return pid if isinstance(pid, int) else None
