"""``python -m bench``: run the benchmarks, one JSON object per line on stdout.

Examples::

    python -m bench                                   # all, embedded Tansu broker
    python -m bench --only validation --size 50000
    python -m bench --only ingest_http,archiver --broker apache-kafka
    python -m bench --only projection --size 100000 --broker apache-kafka
    python -m bench --only churn                      # no servers: simulated populations

Progress and server logs go to stderr; stdout holds only the result lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence

from bench import archiver, churn, ingest_http, projection, storage, survival, validation
from bench.result import Result
from bench.servers import BROKERS, Servers, Unavailable, servers

BENCHMARKS: tuple[str, ...] = (
    validation.NAME,
    ingest_http.NAME,
    archiver.NAME,
    projection.NAME,
    survival.NAME,
    churn.NAME,
    storage.NAME,
)
"""Every benchmark, in the order ``python -m bench`` runs them."""

WITHOUT_SERVERS: frozenset[str] = frozenset({validation.NAME, churn.NAME})
"""Benchmarks that run without the broker and Postgres."""


def _names(values: Sequence[str] | None) -> list[str]:
    if not values:
        return list(BENCHMARKS)
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
        f"survival {survival.DEFAULT_SIZE} persons, churn {churn.DEFAULT_SIZE} people, "
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
    parser.add_argument("--repeats", type=int, default=5, help="validation timing repeats")
    parser.add_argument(
        "--mix", choices=projection.MIXES, default="device", help="projection event mix"
    )
    return parser.parse_args(argv)


def run_one(name: str, args: argparse.Namespace, env: Servers | None) -> Result:
    """Run the benchmark ``name`` with the command-line options."""
    if name == validation.NAME:
        return validation.run(args.size or validation.DEFAULT_SIZE, repeats=args.repeats)
    if name == churn.NAME:
        return churn.run(args.size or churn.DEFAULT_SIZE)
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
    if name == survival.NAME:
        return survival.run(env, args.size or survival.DEFAULT_SIZE)
    if name == storage.NAME:
        return storage.run(env, args.size or storage.DEFAULT_SIZE)
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
