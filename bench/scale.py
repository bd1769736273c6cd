"""``scale``: the projection at a million persons, by one worker and by two in one group.

Simulated populations (:mod:`tenure.simulation`, 90-day spans, a fresh seed per chunk of
2,000 arrivals; the usage rate is calibrated on two small pilots so that ``events`` and
``persons`` are reached together) are produced straight to the canonical topics of a fresh
broker, exactly as the ingest service publishes them (kafka-python, not HTTP), until at
least ``persons`` persons and ``events`` events.

1. Meanwhile ``tenure worker archiver`` fills an archive database, as in a live platform.
2. Baseline: a plain aiokafka ``getmany`` of every record (fresh group), as ``projection``.
3. One ``tenure worker projector`` on a fresh database, from the start of the topics until
   every record is applied and committed and every person derived, then until the follow
   stage has published and aggregated everything (``bench.follow_backlog``).
4. The group rewound; two workers in the same group on a second fresh database, the same.
   (``--stages-apart``: each worker as three processes, apply, derive and follow, as
   ``tenure up`` runs it.)
5. Postgres bytes per event: the archive database plus the first projection database, each
   minus an empty migrated database (no ingest ledger: the events did not come over HTTP),
   and the largest tables of each.
6. The real query service on the first projection database: p50/p99 of
   ``GET /v1/persons/{id}`` (random persons) and ``/v1/tenure/survival``.

Every few seconds: each worker's resident memory (RSS, its process tree), records applied,
persons derived, the backlog. Counts must add up: records applied + dead-lettered ==
produced and the group's committed offsets == produced in both runs; archived + duplicate +
dead-lettered == produced. ``ratio`` = two workers' apply events/s / one worker's.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.follow_backlog import FOLLOW_PARTS, wait_followed
from bench.projection import _backlog, _committed_total, _raw_consume
from bench.records import RawProducer, ingest_records
from bench.result import Result, percentile, rate
from bench.servers import Servers
from bench.workers import (
    Child,
    archiver,
    projector,
    query_service,
    records_done,
    rewind_group,
    wait_healthy,
)
from streams.projector.app import BATCH_MAX, GROUP_ID
from streams.projector.metrics import VIEW_KINDS
from tenure.contract.topics import CANONICAL_TOPICS
from tenure.eventlog.batch_loop import ConsumeSettings
from tenure.simulation import SimulationParameters, simulate
from tenure.storage.tokens import create_token

NAME = "scale"
DEFAULT_PERSONS = 1_000_000
DEFAULT_EVENTS = 10_000_000
CHUNK_PEOPLE = 2000
SPAN_DAYS = 90
QUERIES = 200
WARM_UP_QUERIES = 10
STAGES_APART = ("apply", "derive", "follow")
"""A worker's processes with ``--stages-apart`` (``tenure up``'s projector, deriver and
follower)."""
POLL_S = 0.5
"""How often the workers' ``/metrics`` are read while they project."""
SETTLE_WAIT_S = 15.0
STILL_S = 2.0
"""How long the workers' counters may take to catch up with an empty derive queue."""
PROJECTOR_OUTCOMES = ("applied", "dead_lettered")
ARCHIVER_OUTCOMES = ("archived", "duplicate", "dead_lettered")


def _say(message: str) -> None:
    print(f"bench {NAME}: {message}", file=sys.stderr, flush=True)


def _params(end: datetime, people: int, uses_per_week: float, seed: int) -> SimulationParameters:
    return replace(
        SimulationParameters(),
        people=people,
        days=SPAN_DAYS,
        start=end - timedelta(days=SPAN_DAYS),
        uses_per_week=uses_per_week,
        erasure=False,
        seed=seed,
        source_prefix="urn:tenure:bench-scale",
    )


def _persons_in(sim: Any) -> int:
    """Persons a simulated chunk holds (its truth's head count)."""
    return int(sum(sim.truth.people.values()))


def calibrate(end: datetime, events_per_person: float) -> tuple[float, float]:
    """``(uses_per_week, persons per arrival)`` giving ~``events_per_person`` (two pilots)."""
    pilots = []
    for upw in (0.0, 4.0):
        sim = simulate(_params(end, 300, upw, seed=1))
        pilots.append((len(sim.deliveries) / _persons_in(sim), _persons_in(sim) / 300))
    (low, per_arrival), (high, _) = pilots
    upw = 4.0 * (events_per_person - low) / (high - low) if high > low else 0.0
    return max(0.0, min(upw, 100.0)), per_arrival


def produce_population(bootstrap: str, persons: int, events: int) -> dict[str, Any]:
    """Produce simulated chunks until ``persons`` and ``events`` are both reached."""
    end = datetime.now(UTC).replace(microsecond=0)
    upw, per_arrival = calibrate(end, events / max(persons, 1))
    producer = RawProducer(bootstrap)
    produced = people = chunks = 0
    started = time.perf_counter()
    try:
        seed = 100
        while people < persons or produced < events:
            short = math.ceil((persons - people) / per_arrival) if people < persons else 0
            arrivals = max(50, min(CHUNK_PEOPLE, short or CHUNK_PEOPLE))
            if people >= persons:  # persons reached: top up events in small chunks
                need = (events - produced) / max(events / max(persons, 1), 1) / per_arrival
                arrivals = max(10, min(CHUNK_PEOPLE, math.ceil(need)))
            sim = simulate(_params(end, arrivals, upw, seed))
            records = ingest_records([d.envelope for d in sim.deliveries])
            producer.send_batch(records, wait=False)
            produced += len(records)
            people += _persons_in(sim)
            chunks += 1
            seed += 1
            if chunks % 50 == 0:
                _say(f"produced {produced:,} events, ~{people:,} persons")
        producer.flush()
    finally:
        producer.close()
    seconds = time.perf_counter() - started
    return {
        "events": produced,
        "persons_simulated": people,
        "chunks": chunks,
        "uses_per_week": round(upw, 3),
        "seconds": round(seconds, 1),
        "events_per_s": rate(produced, seconds),
    }


def _follow_gauge(per_worker: list[dict[str, float]]) -> dict[str, int]:
    """The follow stage's backlog gauge by part, as an operator sees it (every worker
    reports the same counts from Postgres: the largest)."""
    return {
        part: max(
            int(m.get(f"tenure_projector_follow_backlog{{part={part}}}", 0)) for m in per_worker
        )
        for part in FOLLOW_PARTS
    }


def _worker_row(children: list[Child], t_s: float) -> dict[str, Any]:
    """One sample over the workers: records done, persons derived, the backlog gauges
    (derive and follow), RSS."""
    per_worker = [c.metrics() for c in children]
    return {
        "t_s": round(t_s, 1),
        "records_done": sum(
            records_done(m, "tenure_projector_records", PROJECTOR_OUTCOMES) for m in per_worker
        ),
        "persons_derived": sum(
            int(m.get("tenure_projector_derived_total{kind=person}", 0)) for m in per_worker
        ),
        "person_backlog_gauge": max(
            int(m.get("tenure_projector_backlog{kind=person}", 0)) for m in per_worker
        ),
        "follow_backlog_gauge": _follow_gauge(per_worker),
        "state_cache_reads": _state_cache_reads(per_worker),
        "rss_mib": [round(c.rss_bytes() / 2**20, 1) for c in children],
    }


def _state_cache_reads(per_worker: list[dict[str, float]]) -> dict[str, int]:
    """Compacted raw states read so far by every process, by kind and result
    (``device_hit``...: ``tenure_projector_state_cache_reads_total``)."""
    name = "tenure_projector_state_cache_reads_total"
    return {
        f"{kind}_{result}": sum(
            int(m.get(f"{name}{{kind={kind},result={result}}}", 0)) for m in per_worker
        )
        for kind in VIEW_KINDS
        for result in ("hit", "miss")
    }


def _hit_shares(reads: dict[str, int]) -> dict[str, float | None]:
    """Per kind, the share of compacted-state reads served from the cache (``None``: none)."""
    shares: dict[str, float | None] = {}
    for kind in VIEW_KINDS:
        hits, misses = reads[f"{kind}_hit"], reads[f"{kind}_miss"]
        shares[kind] = round(hits / (hits + misses), 3) if hits + misses else None
    return shares


def _settled(children: list[Child], row: dict[str, Any], started: float) -> dict[str, Any]:
    """``row`` (the moment the queues were empty) with the workers' counters once they
    caught up: a worker counts a derive slice (and sets its backlog gauge) only after the
    slice's last transaction, so its ``persons_derived`` lags the database by up to one
    slice. Waits until the gauge is 0 and the counter stood still for :data:`STILL_S`."""
    deadline = time.monotonic() + SETTLE_WAIT_S
    later = row
    while time.monotonic() < deadline:
        time.sleep(STILL_S)
        again = _worker_row(children, time.monotonic() - started)
        if (
            not again["person_backlog_gauge"]
            and again["persons_derived"] == later["persons_derived"]
        ):
            later = again
            break
        later = again
    return {**later, "t_s": row["t_s"]}


def project(
    folder: Path,
    bootstrap: str,
    database_url: str,
    workers: int,
    produced: int,
    sample_s: float,
    stages: tuple[str, ...] = ("all",),
) -> dict[str, Any]:
    """Run ``workers`` projectors in one group until everything is applied and derived.

    Each worker is one process per entry of ``stages`` (``("all",)``: one process, as Compose
    and Kubernetes run it; :data:`STAGES_APART`: three, as ``tenure up`` runs it). Polled
    every :data:`POLL_S`; a row of ``over_time`` is kept every ``sample_s`` and at the first
    durable batch, the end of the apply stage and the end of derive.
    """
    children = [
        projector(folder / f"projector-{i}-{part}", bootstrap, database_url, part)
        for i in range(workers)
        for part in stages
    ]
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    timeout = 600 + produced / 500
    first: dict[str, Any] | None = None
    applied: dict[str, Any] | None = None
    derived: dict[str, Any] | None = None
    next_sample = sample_s
    try:
        for child in children:
            child.start()
        while derived is None:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"projection not done after {timeout:.0f} s: {samples[-1:]}")
            time.sleep(POLL_S)
            row = _worker_row(children, time.monotonic() - started)
            keep = row["t_s"] >= next_sample
            if row["records_done"] and first is None:
                first = row
            if row["records_done"] >= produced and applied is None:
                applied = row
            if applied is not None and (keep or not row["person_backlog_gauge"]):
                if _backlog(database_url) == 0:
                    derived = _settled(children, row, started)
                    left, _ = wait_followed(database_url, timeout)
                    derived["follow_backlog_when_derived"] = left
                    derived["followed_t_s"] = round(time.monotonic() - started, 1)
            if derived is not None:
                samples.append(derived)
            elif keep or row is first or row is applied:
                samples.append(row)
                next_sample = row["t_s"] + sample_s
    finally:
        for child in children:
            child.stop()
    assert first is not None and applied is not None and derived is not None
    committed = _committed_total(bootstrap)
    if derived["records_done"] != produced or committed != produced:
        raise RuntimeError(
            f"counts do not add up: {derived['records_done']} applied or dead-lettered,"
            f" {committed} committed, {produced} produced"
        )
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM persons").fetchone()
    persons_rows = int(count[0]) if count else 0
    apply_s = applied["t_s"] - first["t_s"]
    derive_s = derived["t_s"] - applied["t_s"]
    rss = [r for s in samples for r in s["rss_mib"]]
    return {
        "workers": workers,
        "processes_per_worker": list(stages),
        "apply_events_per_s": rate(produced - first["records_done"], apply_s),
        "events_per_s_from_start": rate(produced, applied["t_s"]),
        "apply_seconds": round(apply_s, 2),
        "first_batch_records": first["records_done"],
        "derive_persons_per_s_after_apply": rate(
            derived["persons_derived"] - applied["persons_derived"], derive_s
        ),
        "seconds_until_every_person_derived": derived["t_s"],
        "seconds_until_every_person_followed": derived["followed_t_s"],
        "follow_backlog_when_derived": derived["follow_backlog_when_derived"],
        "derive_seconds_after_apply": round(derive_s, 2),
        "persons_rows": persons_rows,
        "persons_derived": derived["persons_derived"],
        "records_done": derived["records_done"],
        "committed_offsets": committed,
        "max_rss_mib": max(rss, default=0.0),
        "state_cache_reads": derived["state_cache_reads"],
        "state_cache_hit_share": _hit_shares(derived["state_cache_reads"]),
        "over_time": samples,
    }


def _speedup(one: dict[str, Any], two: dict[str, Any]) -> float:
    """Two workers' events/s over one worker's (apply clock, else from the start)."""
    key = "apply_events_per_s"
    if not (one[key] and two[key]):
        key = "events_per_s_from_start"
    return float(two[key] / one[key]) if one[key] else 0.0


def finish_archive(child: Child, started: float, produced: int) -> dict[str, Any]:
    """Wait until the archiver (started before the producer) has every record; stop it."""
    produced_at = time.monotonic()
    try:
        while True:
            m = child.metrics()
            done = records_done(m, "tenure_archive_records", ARCHIVER_OUTCOMES)
            if done >= produced:
                break
            if time.monotonic() - produced_at > 600 + produced / 200:
                raise TimeoutError(f"archiver did {done} of {produced}")
            time.sleep(POLL_S)
        finished = time.monotonic()
        outcomes = {o: records_done(m, "tenure_archive_records", (o,)) for o in ARCHIVER_OUTCOMES}
        rss = child.rss_bytes()
    finally:
        child.stop()
    if sum(outcomes.values()) != produced:
        raise RuntimeError(f"archiver counts {outcomes} do not add up to {produced}")
    return {
        "records_per_s_while_producing": rate(produced, finished - started),
        "seconds_after_produce_end": round(finished - produced_at, 1),
        "outcomes": outcomes,
        "rss_mib_at_end": round(rss / 2**20, 1),
    }


def _sizes(database_url: str) -> tuple[int, dict[str, int]]:
    """A database's size and its ten largest tables (after ``VACUUM ANALYZE``)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # settle the free-space maps; sizes stay as written
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        tables = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
            " ORDER BY 2 DESC LIMIT 10"
        ).fetchall()
    return (int(row[0]) if row else 0), {name: int(size) for name, size in tables}


def storage(archive_url: str, projection_url: str, empty: int, produced: int) -> dict[str, Any]:
    """Postgres bytes per event: the archive database plus a projection database, each
    minus an empty migrated database."""
    archive_bytes, archive_tables = _sizes(archive_url)
    projection_bytes, projection_tables = _sizes(projection_url)
    added = archive_bytes - empty + projection_bytes - empty
    return {
        "bytes_per_event": round(added / produced, 1) if produced else 0.0,
        "archive_bytes_per_event": round((archive_bytes - empty) / produced, 1),
        "projection_bytes_per_event": round((projection_bytes - empty) / produced, 1),
        "empty_database_bytes": empty,
        "archive_database_largest_tables_bytes": archive_tables,
        "projection_database_largest_tables_bytes": projection_tables,
    }


def _database_bytes(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def queries(folder: Path, database_url: str, requests: int = QUERIES) -> dict[str, Any]:
    """p50/p99 of the person and survival routes of the real query service."""
    with psycopg.connect(database_url) as conn:
        token = create_token(conn, "bench-scale", "read")
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT person_id FROM persons ORDER BY random() LIMIT %s", (requests,)
            ).fetchall()
        ]
    service = query_service(folder / "query", database_url)
    service.process.start()
    out: dict[str, Any] = {}
    try:
        wait_healthy(service)
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            paths = {
                "person": [f"/v1/persons/{random.choice(ids)}" for _ in range(requests)],
                "survival": ["/v1/tenure/survival"] * requests,
            }
            for name, urls in paths.items():
                times: list[float] = []
                for i, path in enumerate(urls[:WARM_UP_QUERIES] + urls):
                    began = time.perf_counter()
                    reply = client.get(f"{service.url}{path}")
                    if reply.status_code != 200:
                        raise RuntimeError(f"{path} answered {reply.status_code}")
                    if i >= WARM_UP_QUERIES:
                        times.append(time.perf_counter() - began)
                out[name] = {
                    "requests": len(times),
                    "p50_ms": round(percentile(times, 50) * 1000, 2),
                    "p99_ms": round(percentile(times, 99) * 1000, 2),
                }
    finally:
        service.stop()
    return out


def run(
    servers: Servers,
    *,
    persons: int = DEFAULT_PERSONS,
    events: int = DEFAULT_EVENTS,
    sample_s: float = 5.0,
    requests: int = QUERIES,
    two_workers: bool = True,
    stages_apart: bool = False,
) -> Result:
    """Produce (and archive), project with one worker, size and query its database, then
    (unless ``two_workers`` is False: the 1M run without it takes about half the time)
    project with two. Each part's figures go to stderr as it ends, so a later part that
    fails does not lose them. ``stages_apart``: each worker runs its apply, derive and
    follow stages as three processes (as ``tenure up`` does) instead of one."""
    stages = STAGES_APART if stages_apart else ("all",)
    broker = servers.fresh_broker()
    load_before = os.getloadavg()
    try:
        empty = _database_bytes(servers.fresh_database())
        archive_db = servers.fresh_database()
        archiving = archiver(servers.root / "archiver", broker.bootstrap, archive_db)
        archive_started = time.monotonic()
        archiving.start()  # archives while the producer writes, as in a live platform
        try:
            population = produce_population(broker.bootstrap, persons, events)
        except BaseException:
            archiving.stop()
            raise
        produced = population["events"]
        _say(f"produced {population}; waiting for the archiver ...")
        archived = finish_archive(archiving, archive_started, produced)
        settings = ConsumeSettings(
            broker.bootstrap, GROUP_ID, CANONICAL_TOPICS, "projector", batch_max=BATCH_MAX
        )
        raw_n, raw_s = asyncio.run(_raw_consume(broker.bootstrap, produced, settings))
        first_db = servers.fresh_database()
        one = project(
            servers.root / "one", broker.bootstrap, first_db, 1, produced, sample_s, stages
        )
        _say(f"one worker: {json.dumps(one, default=str)}")  # kept if a later part fails
        _say("sizes and queries ...")
        sizes = storage(archive_db, first_db, empty, produced)
        answered = queries(servers.root, first_db, requests)
        sized = {"postgres": sizes, "queries": answered}
        _say(f"sizes and queries: {json.dumps(sized, default=str)}")
        two: dict[str, Any] | None = None
        if two_workers:
            _say("rewinding, two workers ...")
            rewind_group(broker.bootstrap, GROUP_ID)
            second_db = servers.fresh_database()
            two = project(
                servers.root / "two", broker.bootstrap, second_db, 2, produced, sample_s, stages
            )
            _say(f"two workers: {json.dumps(two, default=str)}")
    finally:
        servers.stop_broker(broker)
    load_after = os.getloadavg()
    return Result(
        name=NAME,
        params={
            "persons": persons,
            "events": events,
            "broker": servers.broker_kind,
            "partitions": 4,
            "span_days": SPAN_DAYS,
            "chunk_arrivals": CHUNK_PEOPLE,
            "sample_s": sample_s,
            "query_requests": requests,
            "batch_max": BATCH_MAX,
            "processes_per_worker": list(stages),
        },
        measured={
            "population": population,
            "one_worker": one,
            "two_workers": two,
            "archiver": archived,
            "postgres": sizes,
            "queries": answered,
        },
        baseline={
            "what": "aiokafka getmany, projector fetch settings, fresh group, same topics",
            "events_per_s": rate(raw_n, raw_s),
            "seconds": round(raw_s, 3),
        },
        ratio=_speedup(one, two) if two is not None else 0.0,
        ratio_meaning="two workers' apply events/s / one worker's (2 = linear scaling; from"
        " the workers' start when everything fit in the first batch; 0 when run with one"
        " worker only)",
        notes={
            "counts": "per run: records applied + dead-lettered == committed offsets =="
            " produced; archived + duplicate + dead-lettered == produced",
            "duplicates": "the simulator resends ~2% of deliveries (same id): the archive"
            " counts them as duplicates",
            "bytes_per_event": "(archive database - empty) + (one worker's projection database"
            " - empty), / events produced; no ingest_ledger rows (produced straight to Kafka)",
            "archiver": "runs while the producer writes (its rate is bounded by the producer's)",
            "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        },
    )
