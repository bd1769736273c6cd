"""``audiences``: the projector's cost with the five shipped audiences against none.

No broker: the cost measured is Postgres and the worker's CPU, as in ``derive``. A simulated
population (the projection benchmark's device-heavy mix, ~20 events per person over 120
days, ``size`` persons) is applied with the apply stage's own function, then:

- **Derive, no audiences (baseline)**: every queued person derived (``derive_pass`` back to
  back); then one stage pass with no audience defined, which returns at once.
- **Audience stage, five audiences (measured)**: the stage (``AudienceStage.run_pass`` until
  it finds nothing) over the same persons, with the shipped audiences (the ones migrate
  seeds): every person is new on the change feed, so this is the stage's full cost for
  everyone the derive stage wrote; the membership changes go to the outbox (publishing is
  not timed: it is one Kafka record per change).
- **A one-day watermark advance**: the due persons re-derived (baseline), then the stage's
  pass over the re-derived rows and the persons whose audience schedule came due.

``ratio`` = (derive + stage) / derive over both phases: the projector's cost with five
audiences relative to none (1.0 = free).
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from bench.derive import PARTITION, _apply, _derive_all
from bench.result import Result, rate
from bench.servers import Servers
from tenure.domain.view import DEFAULT_CONFIG
from tenure.projection import survival_stage
from tenure.projection.audiences import AudienceStage, stored
from tenure.projection.derive import queue_due_persons
from tenure.storage.progress import record_progress

NAME = "audiences"
DEFAULT_SIZE = 5_000
LATENESS = timedelta(hours=1)


def _log(message: str) -> None:
    print(f"bench audiences: {message}", file=sys.stderr, flush=True)


def _follow(conn: psycopg.Connection[Any], stage: AudienceStage) -> tuple[float, int, int]:
    """Run the stage until it finds nothing: (seconds, persons evaluated, changes)."""
    started = time.perf_counter()
    evaluated = changes = 0
    while (done := stage.run_pass(conn, LATENESS)).evaluated:
        evaluated += done.evaluated
        changes += done.changes
    return time.perf_counter() - started, evaluated, changes


def run(env: Servers, size: int = DEFAULT_SIZE) -> Result:
    """Measure the audience stage's cost against the derive stage's on ``size`` persons."""
    url = env.fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        definitions = stored(conn)
        _log(f"applying the events of ~{size} persons ({len(definitions)} audiences)")
        events = _apply(conn, size)
        started = time.perf_counter()
        derived = _derive_all(conn)
        derive_s = time.perf_counter() - started
        with ConnectionPool(url, min_size=1, max_size=2) as pool:  # the churn model (untimed)
            survival_stage.refresh(pool, LATENESS, DEFAULT_CONFIG)
        none_s, _, _ = _follow(conn, AudienceStage(lambda c: []))
        stage = AudienceStage(lambda c: definitions)
        stage_s, evaluated, entries = _follow(conn, stage)
        _log(f"derive {derived} persons {derive_s:.2f} s; stage {evaluated} in {stage_s:.2f} s")

        row = conn.execute("SELECT max(max_event_time) FROM projection_progress").fetchone()
        assert row is not None and row[0] is not None
        with conn.transaction():
            record_progress(conn, {PARTITION: row[0] + timedelta(days=1)})
        started = time.perf_counter()
        with conn.transaction():
            queue_due_persons(conn, LATENESS)
        rederived = _derive_all(conn)
        advance_derive_s = time.perf_counter() - started
        advance_stage_s, advance_evaluated, advance_changes = _follow(conn, stage)
        members = conn.execute("SELECT count(*) FROM audience_members").fetchone()
    baseline_s = derive_s + advance_derive_s
    with_s = baseline_s + stage_s + advance_stage_s
    return Result(
        name=NAME,
        params={"persons": derived, "events": events, "audiences": len(definitions)},
        measured={
            "stage_s": round(stage_s, 3),
            "stage_persons_per_s": rate(evaluated, stage_s),
            "entries": entries,
            "members": int(members[0]) if members else 0,
            "advance_stage_s": round(advance_stage_s, 3),
            "advance_evaluated": advance_evaluated,
            "advance_changes": advance_changes,
            "with_audiences_s": round(with_s, 3),
        },
        baseline={
            "derive_s": round(derive_s, 3),
            "derive_persons_per_s": rate(derived, derive_s),
            "no_audience_stage_s": round(none_s, 4),
            "advance_rederived": rederived,
            "advance_derive_s": round(advance_derive_s, 3),
            "without_audiences_s": round(baseline_s, 3),
        },
        ratio=with_s / baseline_s if baseline_s else 0.0,
        ratio_meaning="projector cost (derive + audience stage) with the five shipped audiences"
        " / without audiences, for everyone once and a one-day advance (1.0 = free)",
        notes={
            "not_timed": "publishing the changes (one Kafka record each), the churn model's"
            " refresh before the stage",
            "advance": "the stage evaluates only the re-derived rows and the persons whose"
            " audience schedule came due (advance_evaluated), never everyone",
        },
    )
