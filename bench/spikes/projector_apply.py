"""In-process cost of Tenure's live projector stages (no Kafka): apply and derive.

``python -m bench.spikes.projector_apply [--events N] [--batch B] [--mix device]`` prints one
JSON line. The baseline
is the pure fold of the same events in the same run (``tenure.domain.world.fold``), so the
ratio shows what Postgres state storage and per-batch locking cost on top of the core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import tempfile
import time
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool

from tenure.domain.events import parse_event
from tenure.domain.world import fold
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord
from tenure.runtime.postgres import EmbeddedPostgres
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.population import simulate
from tenure.storage.migrations import migrate


class _NoBroker:
    """Stands in for the publisher: this benchmark measures Postgres and the core only."""

    def publish(self, records: Any) -> None:
        """Accept and drop records (no dead letters or transitions are expected here)."""

    def close(self) -> None:
        """Nothing to close."""


def main() -> None:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--mix", choices=("simulator", "device"), default="simulator")
    args = parser.parse_args()
    if args.mix == "device":  # the mix of ``python -m bench --only projection``
        from bench.projection import device_mix

        envelopes = device_mix(args.events)
        gc.set_threshold(100_000, 50, 100)  # as the worker sets it
    else:
        envelopes = [d.envelope for d in simulate(SimulationParameters(people=500)).deliveries]
        envelopes = envelopes[: args.events]
    started = time.perf_counter()
    fold(parse_event(orjson.loads(orjson.dumps(e))) for e in envelopes)
    fold_s = time.perf_counter() - started
    root = pathlib.Path(tempfile.mkdtemp(prefix="tenure-bench-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "pg")
    server.start()
    try:
        with psycopg.connect(server.url) as conn:
            migrate(conn)
        records = [IncomingRecord("t", i % 4, i, b"k", orjson.dumps(e))
                   for i, e in enumerate(envelopes)]  # fmt: skip
        with ConnectionPool(server.url, min_size=1, max_size=4) as pool:
            projector = Projector(pool, _NoBroker(), allowed_lateness=timedelta(hours=1))  # type: ignore[arg-type]
            started = time.perf_counter()
            for i in range(0, len(records), args.batch):
                projector.apply(records[i : i + args.batch])
            apply_s = time.perf_counter() - started
            started = time.perf_counter()
            while projector.derive(30).persons or projector.backlog() != (0, 0):
                pass
            derive_s = time.perf_counter() - started
            with pool.connection() as conn:
                row = conn.execute("SELECT count(*) FROM persons").fetchone()
            persons = int(row[0]) if row else 0
    finally:
        server.stop()
    n = len(envelopes)
    print(json.dumps({
        "name": "projector_apply", "events": n, "batch": args.batch, "mix": args.mix,
        "apply_events_per_s": round(n / apply_s), "baseline_fold_events_per_s": round(n / fold_s),
        "ratio": round(fold_s / apply_s, 3), "persons": persons,
        "derive_persons_per_s": round(persons / derive_s, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("TENURE_LOG_LEVEL", "WARNING")
    main()
