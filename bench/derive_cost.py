"""``derive_cost``: the derive stage's persons/s under sustained ingest, in process.

A simulated population's deliveries (``tenure.simulation``, send-time order: the shape of
``tenure simulate``) are applied to a fresh database batch by batch with the apply stage's
own functions (:func:`~tenure.projection.apply.prepare_batch`,
:func:`~tenure.projection.apply.write_batch`); after each batch the derive stage drains its
queues (:func:`~tenure.projection.derive.derive_pass`, then the aggregates stage
:func:`~tenure.projection.survival_stage.refresh`, as ``Projector.derive`` does). No broker: the
figures are the two stages' own costs, wall time including Postgres.

Reported: apply events/s, derive persons/s, persons derived per batch, events per derived
person, and ``keeps_up`` = derive persons/s x events per derived person / apply events/s
(>= 1: the derive stage keeps up with the apply stage). ``--profile FILE`` writes a
cProfile of the derive stage (``python -m pstats FILE``).

Run against another checkout of ``tenure`` (a baseline) with ``PYTHONPATH=<checkout>``::

    python -m bench.derive_cost --people 300 --days 120
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from tenure.domain.config import LifecycleConfig
from tenure.domain.events import DomainEvent, parse_event
from tenure.projection import survival_stage as stage
from tenure.projection.apply import prepare_batch, write_batch
from tenure.projection.derive import derive_pass
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.population import simulate
from tenure.storage.state_cache import RawCaches

LATENESS = timedelta(hours=1)


def events_of(people: int, days: int, seed: int = 11) -> list[DomainEvent]:
    """Every delivery of a simulated population, parsed, in send-time order."""
    params = SimulationParameters(people=people, days=days, seed=seed)
    return [parse_event(d.envelope) for d in simulate(params).deliveries]


def batches(events: Sequence[DomainEvent], size: int) -> Iterator[Sequence[DomainEvent]]:
    """``events`` in consecutive batches of ``size``."""
    for at in range(0, len(events), size):
        yield events[at : at + size]


def _server_cpu(server_pid: int | None) -> float:
    """CPU seconds the Postgres server (every backend) used so far; 0 when unknown."""
    from bench.servers import cpu_seconds, process_tree

    if server_pid is None:
        return 0.0
    return cpu_seconds(process_tree(server_pid)) or 0.0


def run(
    database_url: str,
    events: Sequence[DomainEvent],
    batch: int,
    profile: Path | None = None,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Apply ``events`` batch by batch, draining the derive stage after each; the totals.

    ``server_pid`` (the Postgres server's) adds the server's CPU time during the derive
    stage to the figures."""
    caches = RawCaches()
    config = LifecycleConfig()
    profiler = cProfile.Profile() if profile is not None else None
    apply_s = derive_s = derive_cpu_s = server_cpu_s = 0.0
    applied = persons = devices = passes = 0
    with ConnectionPool(database_url, min_size=1, max_size=4) as pool:
        for part in batches(events, batch):
            latest: datetime = max(e.at for e in part)
            started = time.perf_counter()
            prepared = prepare_batch(part, {("bench", 0): latest}, caches)
            with pool.connection() as conn, conn.transaction():
                write_batch(conn, prepared)
            apply_s += time.perf_counter() - started
            applied += len(part)
            started, cpu = time.perf_counter(), time.process_time()
            server_cpu = _server_cpu(server_pid)
            if profiler is not None:
                profiler.enable()
            with pool.connection() as conn:
                while True:
                    result = derive_pass(
                        conn, allowed_lateness=LATENESS, config=config, caches=caches
                    )
                    passes += 1
                    persons += result.persons
                    devices += result.devices
                    if result.persons == 0 and result.devices == 0:
                        break
            stage.refresh(pool, LATENESS, config)
            if profiler is not None:
                profiler.disable()
            derive_s += time.perf_counter() - started
            derive_cpu_s += time.process_time() - cpu
            server_cpu_s += _server_cpu(server_pid) - server_cpu
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile))
    events_per_s = applied / apply_s
    persons_per_s = persons / derive_s
    events_per_person = applied / max(1, persons)
    return {
        "events": applied,
        "batch": batch,
        "apply_events_per_s": round(events_per_s),
        "apply_s": round(apply_s, 3),
        "derive_persons_per_s": round(persons_per_s),
        "derive_s": round(derive_s, 3),
        "derive_ms_per_person": round(1000 * derive_s / max(1, persons), 3),
        "derive_cpu_ms_per_person": round(1000 * derive_cpu_s / max(1, persons), 3),
        "postgres_cpu_ms_per_person": round(1000 * server_cpu_s / max(1, persons), 3),
        "persons_derived": persons,
        "devices_derived": devices,
        "passes": passes,
        "events_per_derived_person": round(events_per_person, 2),
        "keeps_up": round(persons_per_s * events_per_person / events_per_s, 3),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Start an embedded Postgres (or use ``--database-url``), run, print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.derive_cost")
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--batch", type=int, default=2000, help="events per applied batch")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the derive stage")
    parser.add_argument("--database-url", help="a migrated, empty database (default: fresh)")
    args = parser.parse_args(argv)
    gc.set_threshold(100_000, 50, 100)  # as the projector worker (streams/projector/app.py)
    events = events_of(args.people, args.days)
    print(f"derive_cost: {len(events)} events", file=sys.stderr)
    if args.database_url:
        result = run(args.database_url, events, args.batch, args.profile)
    else:
        from bench.servers import Servers, scratch_dir

        with scratch_dir() as root:
            servers = Servers(root)
            try:
                url = servers.fresh_database()
                process = servers.postgres.process
                pid = process.pid if process is not None else None
                result = run(url, events, args.batch, args.profile, pid)
            finally:
                servers.close()
    print(json.dumps({"name": "derive_cost", "people": args.people, **result}))


if __name__ == "__main__":
    main()
