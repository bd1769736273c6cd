"""``python -m bench``: run the benchmarks, one JSON object per line on stdout.

Examples::

    python -m bench                                   # all, embedded Tansu broker
    python -m bench --only validation --size 50000
    python -m bench --only ingest_http,archiver --broker apache-kafka
    python -m bench --only projection --size 100000 --broker apache-kafka
    python -m bench --only replay --size 300000       # Postgres only
    python -m bench --only churn                      # no servers: simulated populations
    python -m bench --only codec                      # state codec vs the hand-written one
    python -m bench --only state_cache                # a put into a full raw-state cache
    python -m bench --only freshness --duration 120   # tenure up under sustained ingest
    python -m bench --only scale --persons 1000000 --events 10000000 --broker apache-kafka
    python -m bench --only derive --size 100000       # persons in the read model
    python -m bench --only audiences --size 5000      # persons; 5 shipped audiences vs none
    python -m bench --only audiences_load             # freshness load, audience stage off/on

Progress and server logs go to stderr; stdout holds only the result lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence

from bench import (
    archiver,
    audiences,
    audiences_load,
    churn,
    codec,
    derive,
    freshness,
    ingest_http,
    projection,
    replay,
    scale,
    state_cache,
    storage,
    survival,
    validation,
)
from bench.result import Result
from bench.servers import BROKERS, Servers, Unavailable, servers

BENCHMARKS: tuple[str, ...] = (
    validation.NAME,
    ingest_http.NAME,
    archiver.NAME,
    projection.NAME,
    derive.NAME,
    audiences.NAME,
    replay.NAME,
    survival.NAME,
    churn.NAME,
    codec.NAME,
    state_cache.NAME,
    storage.NAME,
    freshness.NAME,
    audiences_load.NAME,
    scale.NAME,
)
"""Every benchmark, in the order ``python -m bench`` runs them."""

WITHOUT_SERVERS: frozenset[str] = frozenset(
    {
        validation.NAME,
        churn.NAME,
        codec.NAME,
        state_cache.NAME,
        freshness.NAME,
        audiences_load.NAME,
    }
)
"""Benchmarks that run without the run's broker and Postgres (``freshness`` and
``audiences_load`` start their own ``tenure up``)."""


ONLY_WHEN_NAMED: frozenset[str] = frozenset({scale.NAME, audiences_load.NAME})
"""Benchmarks too long for a plain ``python -m bench`` (tens of minutes): run with ``--only``."""


def _names(values: Sequence[str] | None) -> list[str]:
    if not values:
        return [n for n in BENCHMARKS if n not in ONLY_WHEN_NAMED]
    chosen = [n.strip() for v in values for n in v.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    return [n for n in BENCHMARKS if n in chosen]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"benchmark(s) to run, comma-separated or repeated: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--size",
        type=int,
        help="events per benchmark (defaults: "
        f"validation {validation.DEFAULT_SIZE}, ingest_http {ingest_http.DEFAULT_SIZE}, "
        f"archiver {archiver.DEFAULT_SIZE}, projection {projection.DEFAULT_SIZE}, "
        f"derive {derive.DEFAULT_SIZE} persons, audiences {audiences.DEFAULT_SIZE} persons, "
        f"replay {replay.DEFAULT_SIZE}, "
        f"survival {survival.DEFAULT_SIZE} persons, churn {churn.DEFAULT_SIZE} people, "
        f"codec {codec.DEFAULT_SIZE} people, "
        f"storage {storage.DEFAULT_SIZE})",
    )
    parser.add_argument("--broker", choices=BROKERS, default="tansu", help="default: tansu")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=ingest_http.DEFAULT_CONCURRENCY,
        help="ingest_http client threads (default %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=ingest_http.DEFAULT_BATCH,
        help="ingest_http events per request (default %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"timing repeats (validation 5, codec {codec.DEFAULT_REPEATS}, state_cache "
        f"{state_cache.DEFAULT_REPEATS}; audiences_load: "
        "off/on pairs, default 1)",
    )
    parser.add_argument(
        "--mix", choices=projection.MIXES, default="device", help="projection event mix"
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="freshness, audiences_load: seconds of sustained ingest (per run; default "
        f"{freshness.DEFAULT_DURATION_S:g} and {audiences_load.DEFAULT_DURATION_S:g})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="freshness: offer at most this many events/s (default: as fast as the ingest API"
        " answers)",
    )
    parser.add_argument(
        "--probes",
        type=int,
        help="freshness: probe rounds during the load, one person per id order each"
        " (default: one round per second of --duration)",
    )
    parser.add_argument(
        "--idle-probes",
        type=int,
        default=freshness.DEFAULT_IDLE_PROBES,
        help="freshness: probe rounds on the idle platform, the baseline (default %(default)s)",
    )
    parser.add_argument(
        "--persons",
        type=int,
        default=scale.DEFAULT_PERSONS,
        help="scale: persons to simulate (at least; default %(default)s)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=scale.DEFAULT_EVENTS,
        help="scale: events produced to Kafka (at least; default %(default)s)",
    )
    parser.add_argument(
        "--one-worker",
        action="store_true",
        help="scale: project with one worker only (skip the two-worker run: half the time)",
    )
    parser.add_argument(
        "--stages-apart",
        action="store_true",
        help="scale: run each worker's apply, derive and follow stages as three processes,"
        " as tenure up does (default: one process per worker)",
    )
    return parser.parse_args(argv)


def run_one(name: str, args: argparse.Namespace, env: Servers | None) -> Result:
    """Run the benchmark ``name`` with the command-line options."""
    if name == validation.NAME:
        return validation.run(args.size or validation.DEFAULT_SIZE, repeats=args.repeats or 5)
    if name == churn.NAME:
        return churn.run(args.size or churn.DEFAULT_SIZE)
    if name == codec.NAME:
        return codec.run(args.size or codec.DEFAULT_SIZE, args.repeats or codec.DEFAULT_REPEATS)
    if name == state_cache.NAME:
        return state_cache.run(args.repeats or state_cache.DEFAULT_REPEATS)
    if name == freshness.NAME:
        return freshness.run(
            args.duration or freshness.DEFAULT_DURATION_S,
            probes=args.probes,
            idle_probes=args.idle_probes,
            concurrency=args.concurrency,
            batch=args.batch,
            rate_cap=args.rate,
        )
    if name == audiences_load.NAME:
        return audiences_load.run(
            args.duration or audiences_load.DEFAULT_DURATION_S,
            pairs=args.repeats or audiences_load.DEFAULT_PAIRS,
            probes=args.probes,
            idle_probes=args.idle_probes,
            concurrency=args.concurrency,
            batch=args.batch,
        )
    assert env is not None
    if name == ingest_http.NAME:
        return ingest_http.run(
            env,
            args.size or ingest_http.DEFAULT_SIZE,
            batch=args.batch,
            concurrency=args.concurrency,
        )
    if name == archiver.NAME:
        return archiver.run(env, args.size or archiver.DEFAULT_SIZE)
    if name == projection.NAME:
        return projection.run(env, args.size or projection.DEFAULT_SIZE, mix=args.mix)
    if name == derive.NAME:
        return derive.run(env, args.size or derive.DEFAULT_SIZE)
    if name == audiences.NAME:
        return audiences.run(env, args.size or audiences.DEFAULT_SIZE)
    if name == replay.NAME:
        return replay.run(env, args.size or replay.DEFAULT_SIZE)
    if name == survival.NAME:
        return survival.run(env, args.size or survival.DEFAULT_SIZE)
    if name == storage.NAME:
        return storage.run(env, args.size or storage.DEFAULT_SIZE)
    if name == scale.NAME:
        return scale.run(
            env,
            persons=args.persons,
            events=args.events,
            two_workers=not args.one_worker,
            stages_apart=args.stages_apart,
        )
    raise ValueError(name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks; return the exit status (1 if any failed)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # kafka-python logs every refused connection while a broker starts; failures that matter
    # surface as exceptions of the benchmark.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    names = _names(args.only)
    failed = False
    needs_servers = any(n not in WITHOUT_SERVERS for n in names)
    with servers(args.broker) as env:
        for name in names:
            started = time.monotonic()
            print(f"bench: running {name} ...", file=sys.stderr, flush=True)
            try:
                result = run_one(name, args, env if needs_servers else None)
            except Unavailable as exc:
                print(json.dumps({"name": name, "skipped": str(exc)}), flush=True)
                continue
            except Exception as exc:
                logging.exception("benchmark %s failed", name)
                print(json.dumps({"name": name, "error": repr(exc)}), flush=True)
                failed = True
                continue
            print(result.to_json(), flush=True)
            print(f"bench: {name} took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
