"""Survival analytics at scale: query latency over live aggregates, and their upkeep cost.

Two measurements, one result line:

* **query latency at N persons** (default 1,000,000): synthetic persons rows are generated
  inside Postgres (``INSERT ... SELECT generate_series``), the aggregates are rebuilt from
  them by the real rebuild path, and the real query service (uvicorn in this process,
  real HTTP over loopback, bearer auth) answers survival, retention and activation
  requests; p50/p99 per request. Baseline: the same survival answer computed by scanning
  ``persons`` (what a query would cost without the aggregates); ratio = scan p50 / API p50.
* **upkeep cost**: the real projector over the same simulated events, alternately with the
  aggregates stage (triggers + drain) and without it (triggers dropped, the projector built
  with ``live_aggregates=False``), each in a fresh database; ratio = events/s with /
  events/s without.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import uvicorn
from psycopg_pool import ConnectionPool

from bench.result import Result, percentile, rate
from bench.servers import Servers
from services.query.app import create_app
from services.query.survival import milestone_body, retention_body, survival_body
from tenure.analytics.kaplan_meier import kaplan_meier
from tenure.analytics.lifetable import LifeTable
from tenure.analytics.logrank import logrank_test
from tenure.analytics.summaries import median_survival, restricted_mean_survival_time
from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.projection.records import IncomingRecord
from tenure.runtime.process import free_port
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.population import simulate
from tenure.storage import survival_aggregates as survival_store
from tenure.storage import survival_reads as reader
from tenure.storage.tokens import create_token

NAME = "survival"
DEFAULT_SIZE = 1_000_000
"""Synthetic persons for the latency part."""
PROJECTOR_PEOPLE = 120
"""Simulated people for the upkeep part (about 60 events each)."""
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
REQUESTS = 200
PATH_NOTE = (
    "p50/p99: real HTTP (uvicorn in this process, httpx client in the same process); "
    "function_*: the route's query function on one connection, no HTTP"
)
LATENESS = timedelta(hours=1)

QUERIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("survival_two_groups", {"groups": "entry:connected_buyer,entry:non_paying_user"}),
    ("survival_all", {"groups": "all"}),
    ("retention_all", {"groups": "all"}),
    ("retention_two_groups", {"groups": "entry:connected_buyer,entry:non_paying_user"}),
    ("activation_all", {"groups": "all"}),
)

SYNTHETIC_PERSONS = """
WITH base AS (
    SELECT i, %(as_of)s::timestamptz - random() * 365 * interval '1 day' AS first_at,
           -ln(1 - random()) * 120 AS tenure_d, random() AS e, random() AS a, random() AS b,
           random() AS c
    FROM generate_series(1, %(n)s) i
), p AS (
    SELECT i, first_at, e, a, b, c,
           CASE WHEN e < 0.45 THEN 'connected_buyer' WHEN e < 0.75 THEN 'one_time_buyer'
                ELSE 'non_paying_user' END AS entry,
           CASE WHEN e >= 0.45 AND e < 0.75 THEN first_at
                ELSE least(first_at + tenure_d * interval '1 day',
                           %(as_of)s::timestamptz - interval '1 hour') END AS last_at
    FROM base
), q AS (
    SELECT p.*, first_at::date AS first_day, last_at::date AS last_day,
           date_trunc('week', first_at)::date AS cohort,
           CASE WHEN entry = 'non_paying_user' AND b < 0.3
                     AND first_at + b * 200 * interval '1 day' <= %(as_of)s
                THEN first_at + b * 200 * interval '1 day'
                WHEN entry <> 'non_paying_user' THEN first_at END AS paid_at,
           CASE WHEN entry = 'connected_buyer' THEN first_at + a * 3 * interval '1 day'
                WHEN entry = 'non_paying_user' THEN first_at END AS use_at
    FROM p
)
INSERT INTO persons (
    person_id, as_of, aliases, segment, buyer_kind, is_customer, is_user, is_sponsor, stage,
    level, is_super_user, tier, value_score, tags, churn_inputs,
    first_engagement_at, last_engagement_at, tenure_days, active_days, first_paid_order_at,
    second_paid_order_at, first_activation_at, paid_order_count, net_spend_minor,
    referral_count, feedback_count, devices_used, entry_path, first_use_at,
    device_activation_at, products, cohort_week, engaged_weeks)
SELECT 'p' || i, %(as_of)s, '{}',
       CASE WHEN paid_at IS NOT NULL AND use_at IS NOT NULL THEN 'customer_and_user'
            WHEN paid_at IS NOT NULL THEN 'customer_only' ELSE 'user_only' END,
       CASE WHEN paid_at IS NOT NULL THEN 'one_time_buyer' END,
       paid_at IS NOT NULL, use_at IS NOT NULL, false,
       CASE WHEN %(as_of)s::date - last_day >= 30 THEN 'churned'
            WHEN %(as_of)s::date - last_day >= 15 THEN 'at_risk' ELSE 'active' END,
       (ARRAY['micro', 'weak', 'strong', 'super'])[1 + floor(c * 4)::int], false,
       (ARRAY['none', 'bronze', 'silver', 'gold', 'platinum'])[1 + floor(b * 5)::int],
       0, '{}', '{}', first_at, last_at, last_day - first_day, 1, paid_at,
       CASE WHEN entry = 'connected_buyer' AND b < 0.3
                 AND first_at + b * 100 * interval '1 day' <= %(as_of)s
            THEN first_at + b * 100 * interval '1 day' END,
       CASE WHEN entry = 'connected_buyer' THEN use_at END,
       CASE WHEN paid_at IS NOT NULL THEN 1 ELSE 0 END, '{}', 0, 0,
       CASE WHEN use_at IS NOT NULL THEN 1 ELSE 0 END, entry, use_at,
       CASE WHEN entry = 'connected_buyer' THEN use_at END,
       ARRAY[(ARRAY['watch', 'band', 'ring', 'tracker', 'hub'])[1 + floor(c * 5)::int]],
       cohort,
       ARRAY(SELECT DISTINCT w FROM unnest(ARRAY[0, (last_day - cohort) / 7,
             floor(random() * ((last_day - cohort) / 7 + 1))::int,
             floor(a * ((last_day - cohort) / 7 + 1))::int]) w ORDER BY w)
FROM q
"""


class _Server:
    """The real query app under uvicorn in a thread."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(pool=pool), host="127.0.0.1", port=self.port, log_level="warning",
            access_log=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("query service did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _log(message: str) -> None:
    print(f"bench: survival: {message}", file=sys.stderr, flush=True)


def _load(url: str, size: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SELECT setseed(0.42)")
        started = time.perf_counter()
        conn.execute(SYNTHETIC_PERSONS, {"as_of": AS_OF, "n": size})
        timings["generate_persons_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        with conn.transaction():
            survival_store.rebuild(conn, AS_OF, 30)
        timings["rebuild_aggregates_s"] = round(time.perf_counter() - started, 1)
        conn.execute("VACUUM ANALYZE")
        rows = conn.execute(
            "SELECT (SELECT count(*) FROM survival_tenure_closed)"
            " + (SELECT count(*) FROM survival_tenure_open),"
            " (SELECT count(*) FROM milestone_events) + (SELECT count(*) FROM milestone_pending),"
            " (SELECT count(*) FROM retention_on) + (SELECT count(*) FROM retention_last)"
        ).fetchone()
        assert rows is not None
        timings["tenure_rows"], timings["milestone_rows"], timings["retention_rows"] = rows
    return timings


def _scan_survival(pool: ConnectionPool) -> float:
    """The two-group survival answer computed from ``persons`` directly (the baseline)."""
    started = time.perf_counter()
    tables = []
    with pool.connection() as conn:
        for entry in ("connected_buyer", "non_paying_user"):
            rows = conn.execute(
                "SELECT tenure_days, %s::date - (last_engagement_at AT TIME ZONE 'UTC')::date"
                " >= 30 FROM persons WHERE entry_path = %s AND first_engagement_at IS NOT NULL",
                (AS_OF, entry),
            ).fetchall()
            tables.append(LifeTable.from_durations([r[0] for r in rows], [r[1] for r in rows]))
    for table in tables:
        curve = kaplan_meier(table)
        median_survival(curve)
        restricted_mean_survival_time(curve, 180)
    logrank_test(tables[0], tables[1])
    return time.perf_counter() - started


def _function_latencies(
    pool: ConnectionPool, name: str, params: dict[str, str], n: int
) -> list[float]:
    """The route's own query function (one read-only snapshot + orjson), without HTTP."""
    groups = params["groups"]
    out: list[float] = []
    with pool.connection() as conn:
        for i in range(n + 10):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                state = reader.aggregate_state(conn)
                if name.startswith("survival"):
                    body = survival_body(conn, state, groups, None, 180)
                elif name.startswith("retention"):
                    body = retention_body(conn, state, groups, None)
                else:
                    body = milestone_body(conn, state, "activation", groups, None, 14)
            orjson.dumps(body)
            if i >= 10:
                out.append(time.perf_counter() - started)
    return out


def _latencies(
    url: str, token: str, path: str, params: dict[str, str], requests: int
) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    out: list[float] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i in range(requests + 10):
            started = time.perf_counter()
            reply = client.get(path, params=params)
            elapsed = time.perf_counter() - started
            reply.raise_for_status()
            if i >= 10:  # warm-up
                out.append(elapsed)
    return out


def _partition(envelope: dict[str, Any]) -> int:
    return zlib.crc32(str(envelope["data"].get("device_id") or envelope["id"]).encode()) % 4


def _records(people: int) -> list[IncomingRecord]:
    params = SimulationParameters(people=people, days=180, seed=7)
    envelopes = [d.envelope for d in simulate(params).deliveries]
    return [
        IncomingRecord("tenure.events", _partition(e), i, None, orjson.dumps(e))
        for i, e in enumerate(envelopes)
    ]


def _project(env: Servers, bootstrap: str, records: list[IncomingRecord], live: bool) -> float:
    url = env.fresh_database()
    with ConnectionPool(url, min_size=1, max_size=4) as pool:
        if not live:
            with pool.connection() as conn:
                for trigger in ("inserted", "updated", "deleted"):
                    conn.execute(f"DROP TRIGGER persons_survival_{trigger} ON persons")
        publisher = EventPublisher(bootstrap)
        projector = Projector(pool, publisher, allowed_lateness=LATENESS, live_aggregates=live)
        try:
            started = time.perf_counter()
            for i in range(0, len(records), 500):
                projector.project(records[i : i + 500])
            for _ in range(100):
                projector.settle(budget_s=5)
                if projector.backlog() == (0, 0):
                    break
            elapsed = time.perf_counter() - started
        finally:
            publisher.close()
        with pool.connection() as conn:
            counted = conn.execute("SELECT count(*) FROM survival_contributions").fetchone()
            persons = conn.execute("SELECT count(*) FROM persons").fetchone()
        assert counted is not None and persons is not None
        if live and counted[0] != persons[0]:
            raise RuntimeError(f"aggregates cover {counted[0]} of {persons[0]} persons")
    return elapsed


def run(
    env: Servers,
    size: int = DEFAULT_SIZE,
    *,
    projector_people: int = PROJECTOR_PEOPLE,
    requests: int = REQUESTS,
) -> Result:
    """Run both parts; return the result line."""
    url = env.fresh_database()
    _log(f"generating {size} persons and rebuilding the aggregates ...")
    load = _load(url, size)
    _log(f"loaded: {load}")
    measured: dict[str, Any] = {}
    with ConnectionPool(url, min_size=2, max_size=8) as pool:
        with pool.connection() as conn:
            token = create_token(conn, "bench", scope="read")
        with _Server(pool) as base:
            for name, params in QUERIES:
                path = "/v1/tenure/" + name.split("_")[0]
                lat = _latencies(base, token, path, params, requests)
                measured[name] = {
                    "p50_ms": round(percentile(lat, 50) * 1000, 2),
                    "p99_ms": round(percentile(lat, 99) * 1000, 2),
                    "requests": len(lat),
                }
                fn = _function_latencies(pool, name, params, requests)
                measured[name]["function_p50_ms"] = round(percentile(fn, 50) * 1000, 2)
                measured[name]["function_p99_ms"] = round(percentile(fn, 99) * 1000, 2)
                _log(f"{name}: {measured[name]}")
        scans = [_scan_survival(pool) for _ in range(5)]
    scan_p50_ms = round(statistics.median(scans) * 1000, 1)
    _log(f"scan baseline p50 {scan_p50_ms} ms")

    records = _records(projector_people)
    _log(f"projecting {len(records)} simulated events with and without the stage ...")
    broker = env.fresh_broker()
    try:
        timings: dict[bool, list[float]] = {True: [], False: []}
        for live in (False, True, True, False):
            timings[live].append(_project(env, broker.bootstrap, records, live))
            _log(f"live={live}: {timings[live][-1]:.1f} s")
    finally:
        env.stop_broker(broker)
    with_rate = rate(len(records), statistics.mean(timings[True]))
    without_rate = rate(len(records), statistics.mean(timings[False]))
    measured["projector_events_per_s_with_aggregates"] = with_rate
    measured["projector_events_per_s_without_aggregates"] = without_rate
    measured["upkeep_ratio_with_over_without"] = round(with_rate / without_rate, 3)
    p50 = measured["survival_two_groups"]["p50_ms"]
    return Result(
        name=NAME,
        params={"persons": size, "requests_per_query": requests, "projector_events": len(records),
                "as_of": AS_OF.isoformat(), "path": PATH_NOTE},
        measured=measured,
        baseline={"survival_two_groups_scan_p50_ms": scan_p50_ms, **load},
        ratio=round(scan_p50_ms / p50, 2) if p50 else 0.0,
        ratio_meaning="survival (two groups + log-rank) by scanning persons / via the live "
        "aggregates over HTTP, p50 (higher is better); upkeep cost in measured",
        notes={"loadavg": os.getloadavg(), "target": "p99 < 50 ms"},
    )  # fmt: skip
