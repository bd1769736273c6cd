"""``archive_names``: what the archiver's cache of recorded key names saves Postgres.

Since migration 0028 ``archive.append`` records the (record key, device or person) names its
records carry (``tenure/storage/archive_keys.py``). An archiver keeps the names it committed
(``RecordedNames``) and sends only the others. This benchmark archives one simulated
population (a real mix: people use their own devices over months, so names repeat) in
archiver-sized batches into fresh databases, alternately without the cache (the baseline:
every batch sends its distinct names) and with it, and reports the seconds spent appending
(the ratio) and Postgres CPU seconds, medians over the rounds.
"""

from __future__ import annotations

import statistics
from typing import Any

import psycopg

from bench.replay import archive_deliveries, simulated_deliveries
from bench.result import Result
from bench.servers import Servers, cpu_seconds, process_tree
from tenure.storage.archive_keys import RecordedNames

NAME = "archive_names"
DEFAULT_SIZE = 200_000
BATCH = 2000
"""Records per transaction: the archiver's ``max_poll_records``."""
ROUNDS = 2
"""Rounds of (without, with) - alternating, so drift hits both alike."""


def _archive(servers: Servers, deliveries: list[Any], cached: bool) -> dict[str, Any]:
    """Archive ``deliveries`` into a fresh database; what it cost."""
    url = servers.fresh_database()
    postgres = servers.postgres.process
    pids = process_tree(postgres.pid) if postgres and postgres.pid else []
    before = cpu_seconds(pids) if pids else None
    recorded = RecordedNames() if cached else None
    rows, appending = archive_deliveries(url, deliveries, BATCH, recorded)
    after = cpu_seconds(process_tree(pids[0])) if pids else None
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM archive_key_names").fetchone()
    return {
        "rows": rows,
        "names": int(row[0]) if row else 0,
        "append_s": appending,
        "postgres_cpu_s": None if before is None or after is None else after - before,
    }


def run(servers: Servers, size: int = DEFAULT_SIZE, rounds: int = ROUNDS) -> Result:
    """Archive one simulated population without and with the cache, ``rounds`` times."""
    deliveries = simulated_deliveries(size)
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(rounds):
        for cached in (False, True):
            runs[cached].append(_archive(servers, deliveries, cached))
    if {r["names"] for rs in runs.values() for r in rs} != {runs[False][0]["names"]}:
        raise RuntimeError("the cache changed which names were recorded")

    def median(cached: bool, field: str) -> float | None:
        values = [r[field] for r in runs[cached] if r[field] is not None]
        return round(statistics.median(values), 3) if values else None

    with_s, without_s = median(True, "append_s"), median(False, "append_s")
    return Result(
        name=NAME,
        params={"events": runs[False][0]["rows"], "batch": BATCH, "rounds": rounds},
        measured={
            "postgres_cpu_s": median(True, "postgres_cpu_s"),
            "append_s": with_s,
            "names_recorded": runs[True][0]["names"],
            "runs": runs[True],
        },
        baseline={
            "what": "the same archive without the cache: every batch sends its distinct names",
            "postgres_cpu_s": median(False, "postgres_cpu_s"),
            "append_s": without_s,
            "runs": runs[False],
        },
        ratio=with_s / without_s if with_s and without_s else 0.0,
        ratio_meaning="seconds in archive.append and its commits with the cache / without"
        " (lower is better)",
        notes={
            "order": "rounds of (without, with), each into a fresh database",
            "postgres_cpu_s": "the embedded Postgres server's CPU seconds over the archiving"
            " (null when the benchmark runs against a server it did not start)",
        },
    )
