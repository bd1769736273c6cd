"""``replay``: events/s and peak memory of ``tenure replay`` vs a raw read of the archive.

The archive of a fresh database is filled with a simulated population (``tenure simulate``'s
people, ~42 events each, person ids tokenised as ingest does) until it holds about ``size``
events, and the live raw states are converged to it (as a running projector would have
them), untimed.

- Baseline: every archive row read through the replay's own server-side cursor
  (``tenure.storage.archive.read_documents``), nothing decoded.
- Measured: ``replay()`` in a child process (its worker processes included) with the
  defaults of ``tenure replay``: the memory bound (``TENURE_PROJECTOR_CACHE_MB``, 128) and
  one worker process per core (``TENURE_REPLAY_WORKERS=0``; the archive is planned and its
  parts of independent persons shared among them, ``notes.parts``): wall seconds, CPU seconds
  of the process tree, and the peak resident set of the largest process.
- Same run, before it: the replay in the replaying process alone (``workers=1``; planned
  only past one part), ``notes.one_process``, and the speed-up over it.

``ratio`` = replay events/s / raw read rows/s. On a shared machine wall seconds depend on
the load; CPU seconds much less.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import psycopg

from bench.result import Result, rate
from bench.servers import Servers
from tenure.contract.topics import ROUTES
from tenure.privacy.boundary import pseudonymiser_for, tokenised
from tenure.storage import archive, person_pseudonyms
from tenure.storage.archive import ArchiveRecord

NAME = "replay"
DEFAULT_SIZE = 300_000
EVENTS_PER_PERSON = 42
"""About how many archived events a simulated person brings (measured: 303k for 7,200)."""


def fill_archive(database_url: str, size: int) -> int:
    """Archive a simulated population of about ``size`` events; return the rows archived."""
    from tenure.simulation import SimulationParameters, simulate

    people = max(10, size // EVENTS_PER_PERSON)
    deliveries = simulate(SimulationParameters(people=people)).deliveries
    now = datetime.now(UTC)
    offsets: dict[tuple[str, int], int] = {}
    with psycopg.connect(database_url) as conn:
        pseudonymiser = pseudonymiser_for(conn)
        for start in range(0, len(deliveries), 5000):
            registry: dict[str, str] = {}
            records = []
            for delivery in deliveries[start : start + 5000]:
                envelope = delivery.envelope
                route = ROUTES[envelope["type"]]
                key = str(envelope["data"].get(route.key_field))
                out, key = tokenised(pseudonymiser, envelope, key, registry)
                partition = sum(key.encode()) % 4
                offset = offsets.get((route.topic, partition), 0)
                offsets[(route.topic, partition)] = offset + 1
                at = datetime.fromisoformat(out["time"].replace("Z", "+00:00"))
                records.append(
                    ArchiveRecord(out["source"], out["id"], out["type"], at, key, out, now,
                                  route.topic, partition, offset)
                )  # fmt: skip
            person_pseudonyms.register(conn, registry)
            archive.append(conn, records)
            conn.commit()
        return archive.count(conn)


def _raw_read(database_url: str) -> tuple[int, float]:
    """Every archive row through the replay's cursor, nothing decoded: (rows, seconds)."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        _, first, last = archive.bounds(conn)
        started = time.perf_counter()
        rows = sum(len(chunk) for chunk in archive.read_documents(conn, first, last, 20_000))
        return rows, time.perf_counter() - started


_CHILD = """
import json, resource, sys, time
from tenure.projection.replay import replay
started = time.perf_counter()
result = replay(sys.argv[1], workers=int(sys.argv[2]))
seconds = time.perf_counter() - started
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
def peak_kib():  # VmHWM: this process since its exec; ru_maxrss keeps the forking parent's
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return own.ru_maxrss
print(json.dumps({"events": result.events, "persons": result.persons, "devices": result.devices,
    "parts": result.parts, "workers": result.workers,
    "dead_lettered": result.dead_lettered, "seconds": seconds,
    "cpu_seconds": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
    "own_peak_rss_mib": peak_kib() / 1024, "workers_peak_rss_mib": kids.ru_maxrss / 1024}))
"""


def _replay_in_child(database_url: str, workers: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, database_url, str(workers)],
        check=True,
        capture_output=True,
        text=True,
    )
    measured: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return measured


def _say(message: str) -> None:
    print(f"bench replay: {message}", file=sys.stderr, flush=True)


def run(servers: Servers, size: int = DEFAULT_SIZE) -> Result:
    """Fill an archive of about ``size`` events; measure the replay and the raw read."""
    from psycopg_pool import ConnectionPool

    from tenure.projection.catch_up import converge

    database_url = servers.fresh_database()
    archived = fill_archive(database_url, size)
    _say(f"archived {archived} events; converging the raw states (untimed) ...")
    with ConnectionPool(database_url, min_size=1, max_size=1) as pool:
        converge(pool)
    raw_rows, raw_s = _raw_read(database_url)
    _say(f"raw read: {raw_rows / raw_s:,.0f} rows/s; replaying in one process ...")
    alone = _replay_in_child(database_url, 1)
    _say(f"one process: {alone['events'] / alone['seconds']:,.0f} events/s; with workers ...")
    got = _replay_in_child(database_url, 0)
    for run in (alone, got):
        if run["events"] != archived or run["dead_lettered"]:
            raise RuntimeError(f"replayed {run['events']} of {archived} events: {run}")
    if (got["persons"], got["devices"]) != (alone["persons"], alone["devices"]):
        raise RuntimeError(f"the replays disagree: {alone} vs {got}")
    eps, raw_eps = got["events"] / got["seconds"], raw_rows / raw_s
    peak = max(got["own_peak_rss_mib"], got["workers_peak_rss_mib"])
    return Result(
        name=NAME,
        params={"size": size, "archived_events": archived},
        measured={
            "events_per_s": rate(int(got["events"]), got["seconds"]),
            "seconds": round(got["seconds"], 3),
            "cpu_seconds": round(got["cpu_seconds"], 2),
            "events_per_cpu_s": rate(int(got["events"]), got["cpu_seconds"]),
            "peak_rss_mib": round(peak, 1),
        },
        baseline={
            "what": "every archive row through the replay's server-side cursor, not decoded",
            "rows_per_s": rate(raw_rows, raw_s),
            "seconds": round(raw_s, 3),
        },
        ratio=eps / raw_eps,
        ratio_meaning="replay events/s / raw archive read rows/s (higher is better, <= 1)",
        notes={
            "persons": got["persons"],
            "parts": got["parts"],
            "devices": got["devices"],
            "workers": got["workers"],
            "replay_process_peak_rss_mib": round(got["own_peak_rss_mib"], 1),
            "fold_workers_peak_rss_mib": round(got["workers_peak_rss_mib"], 1),
            "one_process": {
                "events_per_s": rate(int(alone["events"]), alone["seconds"]),
                "seconds": round(alone["seconds"], 3),
                "cpu_seconds": round(alone["cpu_seconds"], 2),
                "parts": alone["parts"],
                "peak_rss_mib": round(
                    max(alone["own_peak_rss_mib"], alone["workers_peak_rss_mib"]), 1
                ),
            },
            "speedup_over_one_process": round(alone["seconds"] / got["seconds"], 3),
        },
    )
