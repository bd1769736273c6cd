"""``derive``: persons/s of the derive stage, and the cost of a one-day watermark advance.

No broker: the derive stage reads and writes Postgres only, so events go straight into the
raw states with the apply stage's own function (``apply_events``), like a projector batch.

- **Derive rate**: a real population (the projection benchmark's device-heavy mix, ~20
  events per person over 120 days; ``min(size, 10,000)`` persons) is applied, then derived
  by one worker (``derive_pass`` back to back, one connection) until the queues are empty:
  persons/s per worker.
- **One-day advance with ``size`` persons in the read model**: the ``persons`` table is
  filled up to ``size`` rows with copies of the derived rows under new ids whose schedule
  (``next_change_at``) lies a year ahead, so the table and its schedule index have ``size``
  rows while the due rows are the real population's. The watermark then moves one day:
  :func:`~tenure.projection.derive.queue_due_persons` plus the derive passes until the
  queue is empty, timed. ``rows_due`` (the rows whose schedule came due, counted first)
  must equal ``rows_rederived``.
- **Baseline, same run**: the old rescan of a watermark move: the statement that queued
  every person derived before the watermark, timed on the same ``size`` rows (then rolled
  back), plus deriving all ``size`` of them at the measured rate.
  ``ratio`` = advance seconds / rescan seconds.

``projected_advance_s`` scales the advance to ``size`` persons with the real population's
due fraction (the fill rows are never due) at the advance's own persons/s: the figure to
hold against the 60 s target.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any

import psycopg

from bench.projection import device_mix
from bench.result import Result, rate
from bench.servers import Servers
from tenure.domain.events import parse_event
from tenure.projection.apply import apply_events
from tenure.projection.derive import derive_pass, queue_due_persons
from tenure.storage import derive_queue
from tenure.storage.progress import record_progress
from tenure.storage.read_models import STORED_PERSON_COLUMNS

NAME = "derive"
DEFAULT_SIZE = 1_000_000
REAL_PERSONS = 10_000
LATENESS = timedelta(hours=1)
PARTITION = ("tenure.bench.v1", 0)
CHUNK = 500


def _log(message: str) -> None:
    print(f"bench derive: {message}", file=sys.stderr, flush=True)


def _apply(conn: psycopg.Connection[Any], persons: int) -> int:
    events = [parse_event(e) for e in device_mix(persons * 20)]
    latest = max(e.at for e in events)
    for at in range(0, len(events), 5000):
        with conn.transaction():
            apply_events(conn, events[at : at + 5000], {PARTITION: latest})
    return len(events)


def _derive_all(conn: psycopg.Connection[Any]) -> int:
    total = 0
    while True:
        result = derive_pass(conn, allowed_lateness=LATENESS, limit=CHUNK)
        total += result.persons
        if result.persons == 0 and result.devices == 0:
            return total


def _fill(conn: psycopg.Connection[Any], size: int) -> int:
    """Copies of the derived rows under new ids, their schedule a year ahead."""
    have = conn.execute("SELECT count(*) FROM persons").fetchone()
    real = int(have[0]) if have else 0
    missing = max(0, size - real)
    if not missing or not real:
        return 0
    columns = [c for c in (*STORED_PERSON_COLUMNS, "basis") if c not in ("person_id",)]
    copied = ", ".join(
        "next_change_at + interval '365 days'" if c == "next_change_at" else c for c in columns
    )
    with conn.transaction():
        conn.execute("ALTER TABLE persons DISABLE TRIGGER USER")  # no survival queue here
        conn.execute(
            f"INSERT INTO persons (person_id, {', '.join(columns)})"
            f" SELECT 'fill-' || g || '-' || person_id, {copied}"
            " FROM generate_series(1, %s) g, persons WHERE person_id NOT LIKE 'fill-%%'"
            " LIMIT %s",
            (missing // real + 1, missing),
        )
        conn.execute("ALTER TABLE persons ENABLE TRIGGER USER")
    conn.execute("ANALYZE persons")
    return missing


def _rescan_seconds(conn: psycopg.Connection[Any], as_of: Any) -> tuple[float, int]:
    """The old time-driven step: queue every person derived before ``as_of`` (rolled back)."""
    with conn.transaction() as tx:
        started = time.perf_counter()
        cur = conn.execute(
            "INSERT INTO dirty_persons (person_id) SELECT person_id FROM persons p"
            " WHERE as_of < %s"
            " AND NOT EXISTS (SELECT 1 FROM dirty_persons d WHERE d.person_id = p.person_id)"
            " ORDER BY as_of",
            (as_of,),
        )
        seconds = time.perf_counter() - started
        queued = cur.rowcount
        raise psycopg.Rollback(tx)
    return seconds, queued


def run(env: Servers, size: int = DEFAULT_SIZE) -> Result:
    """Measure the derive rate and a one-day watermark advance with ``size`` persons."""
    url = env.fresh_database()
    real = min(size, REAL_PERSONS)
    with psycopg.connect(url, autocommit=True) as conn:
        _log(f"applying the events of ~{real} persons")
        events = _apply(conn, real)
        _log("deriving them")
        started = time.perf_counter()
        derived = _derive_all(conn)
        derive_s = time.perf_counter() - started
        per_s = rate(derived, derive_s)
        _log(f"{derived} persons in {derive_s:.1f} s; filling the read model to {size} rows")
        filled = _fill(conn, size)
        row = conn.execute("SELECT max(max_event_time) FROM projection_progress").fetchone()
        assert row is not None and row[0] is not None
        moved = row[0] + timedelta(days=1)
        as_of = moved - LATENESS
        due = derive_queue.due_persons(conn, as_of)
        _log(f"one-day advance: {due} rows due of {derived + filled}")
        with conn.transaction():
            record_progress(conn, {PARTITION: moved})
        started = time.perf_counter()
        with conn.transaction():
            queued = queue_due_persons(conn, LATENESS)
        queue_s = time.perf_counter() - started
        rederived = _derive_all(conn)
        advance_s = time.perf_counter() - started
        rescan_queue_s, rescan_rows = _rescan_seconds(conn, as_of)
    if rederived != due or queued != due:
        raise AssertionError(f"re-derived {rederived} (queued {queued}) but {due} were due")
    total = derived + filled
    rescan_s = rescan_queue_s + (rescan_rows / per_s if per_s else 0.0)
    advance_rate = rederived / (advance_s - queue_s) if advance_s > queue_s else 0.0
    projected = queue_s + (
        due / derived * total / advance_rate if derived and advance_rate else 0.0
    )
    return Result(
        name=NAME,
        params={"persons_in_read_model": total, "real_persons": derived, "events": events},
        measured={
            "derive_persons_per_s_per_worker": per_s,
            "advance_one_day_s": round(advance_s, 3),
            "queue_due_s": round(queue_s, 4),
            "rows_due": due,
            "rows_rederived": rederived,
            "advance_persons_per_s": round(advance_rate, 1),
            "due_fraction_of_real": round(due / derived, 4) if derived else 0.0,
            "projected_advance_s": round(projected, 1),
        },
        baseline={
            "rescan_queue_s": round(rescan_queue_s, 3),
            "rescan_rows": rescan_rows,
            "rescan_derive_s_at_measured_rate": round(rescan_s - rescan_queue_s, 1),
            "rescan_s": round(rescan_s, 1),
        },
        ratio=advance_s / rescan_s if rescan_s else 0.0,
        ratio_meaning="one-day advance by schedule / the old rescan of every person (lower is"
        " better); projected_advance_s is the advance at this size with the real due fraction",
        notes={
            "fill": "rows beyond the real population are copies with next_change_at a year"
            " ahead: never due in the advance",
            "target": "projected_advance_s < 60 at 1,000,000 persons (issue 10)",
        },
    )
