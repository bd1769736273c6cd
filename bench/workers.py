"""Tenure's workers and the query service as child processes of a benchmark.

Each runs as ``tenure worker ...`` / ``tenure serve query`` against the benchmark's broker
and database, on a free port, its log in the benchmark's scratch folder. Helpers read their
``/metrics`` and resident memory, and rewind a consumer group to the start of the topics.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from bench.platform_up import scrape
from bench.servers import process_tree
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.runtime.process import ManagedProcess, free_port, port_open

LATENESS_S = 3600
"""Allowed lateness the benchmarks' workers run with (as ``bench.projection``)."""


class Child:
    """One ``tenure`` command as a child process with a ``/metrics`` (or HTTP) port."""

    def __init__(self, name: str, args: list[str], folder: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env.update(
            env, TENURE_STATE_DIR=str(folder), TENURE_ALLOWED_LATENESS_S=str(LATENESS_S)
        )
        port_flag = (
            ["--port", str(self.port)] if args[0] == "serve" else ["--metrics-port", str(self.port)]
        )
        self.process = ManagedProcess(
            name,
            [sys.executable, "-m", "tenure.cli.app", *args, *port_flag],
            folder / f"{name}.log",
            env=full_env,
        )

    @property
    def url(self) -> str:
        """Base URL of its HTTP port."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until its port answers."""
        self.process.start()
        self.process.wait_ready(lambda: port_open("127.0.0.1", self.port), 120)

    def metrics(self) -> dict[str, float]:
        """Its Prometheus samples."""
        return scrape(f"{self.url}/metrics")

    def rss_bytes(self) -> int:
        """Resident memory of its process tree (Linux ``/proc``; 0 elsewhere)."""
        pid = self.process.pid
        if pid is None:
            return 0
        total = 0
        for p in process_tree(pid):
            try:
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def stop(self) -> None:
        """Stop it gracefully."""
        self.process.stop(timeout=60)


def projector(folder: Path, bootstrap: str, database_url: str, stages: str = "all") -> Child:
    """``tenure worker projector --stages <stages>``."""
    env = {
        "TENURE_KAFKA_BOOTSTRAP": bootstrap,
        "TENURE_DATABASE_URL": database_url,
        "TENURE_LOG_LEVEL": "WARNING",
    }
    return Child("projector", ["worker", "projector", "--stages", stages], folder, env)


def archiver(folder: Path, bootstrap: str, database_url: str) -> Child:
    """``tenure worker archiver``."""
    env = {
        "TENURE_KAFKA_BOOTSTRAP": bootstrap,
        "TENURE_DATABASE_URL": database_url,
        "TENURE_LOG_LEVEL": "WARNING",
    }
    return Child("archiver", ["worker", "archiver"], folder, env)


def query_service(folder: Path, database_url: str) -> Child:
    """``tenure serve query`` on 127.0.0.1."""
    env = {"TENURE_DATABASE_URL": database_url, "TENURE_LOG_LEVEL": "WARNING"}
    child = Child("query", ["serve", "query", "--host", "127.0.0.1"], folder, env)
    return child


def wait_healthy(child: Child) -> None:
    """Wait until an HTTP service's ``/healthz`` answers 200."""
    child.process.wait_ready(
        lambda: httpx.get(f"{child.url}/healthz", timeout=2).status_code == 200, 120
    )


def records_done(samples: dict[str, float], prefix: str, outcomes: tuple[str, ...]) -> int:
    """Sum of ``{prefix}_total`` samples whose ``outcome`` label is one of ``outcomes``."""
    total = 0.0
    for key, value in samples.items():
        if key.startswith(f"{prefix}_total{{") and any(f"outcome={o}" in key for o in outcomes):
            total += value
    return int(total)


def rewind_group(bootstrap: str, group_id: str, timeout_s: float = 120.0) -> int:
    """Commit offset 0 on every partition of the canonical topics for ``group_id`` (which
    must have no other members); return the number of partitions rewound.

    The consumer joins the group (Tansu refuses commits from outside a generation), takes
    every partition, and commits 0 for each.
    """
    import time

    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    try:
        consumer.subscribe(list(CANONICAL_TOPICS))
        deadline = time.monotonic() + timeout_s
        wanted = {
            TopicPartition(t, p)
            for t in CANONICAL_TOPICS
            for p in consumer.partitions_for_topic(t) or ()
        }
        while consumer.assignment() != wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not take every partition of {group_id}")
            consumer.poll(timeout_ms=500, max_records=1)
        consumer.commit({tp: OffsetAndMetadata(0, "", -1) for tp in wanted})
        left = [tp for tp in wanted if (consumer.committed(tp) or 0) != 0]
        if left:
            raise RuntimeError(f"{len(left)} partitions of {group_id} not rewound")
        return len(wanted)
    finally:
        consumer.close()
