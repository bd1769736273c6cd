"""``audiences_load``: the projector's cost with the five shipped audiences against none, at
the ``freshness`` benchmark's load (issue 14).

Runs :func:`bench.freshness.run` (the real platform, ``tenure up`` embedded default, under
sustained simulated ingest with freshness probes) ``pairs`` times per side in one session,
alternating: the audience stage switched off (``TENURE_AUDIENCES=off``: the baseline) then
on (the default: the five shipped audiences, kept live as views change and published to
``tenure.audiences.v1``). Each side is a fresh platform with the same load shape.

Compared per side (medians over its runs): the projector's CPU per accepted event (from the
load's start until its backlog drained, every probe was seen and it went quiet), the worst
id order's freshness p99 under load, the largest person backlog, and the events/s ingest
accepted. ``ratio`` = projector CPU per event on / off.
"""

from __future__ import annotations

import os
import statistics
import sys
from typing import Any

from bench import freshness
from bench.result import Result

NAME = "audiences_load"
DEFAULT_DURATION_S = 60.0
DEFAULT_PAIRS = 1
SIDES = (("off", {"TENURE_AUDIENCES": "off"}), ("on", {"TENURE_AUDIENCES": "on"}))


def _say(message: str) -> None:
    print(f"bench {NAME}: {message}", file=sys.stderr, flush=True)


def summary(result: Result) -> dict[str, Any]:
    """The figures one freshness run gives this comparison."""
    m = result.measured
    p99s = [s["p99_s"] for s in m["visibility"].values() if s["p99_s"] is not None]
    return {
        "accepted_events": m["load"]["accepted"],
        "accepted_events_per_s": m["load"]["accepted_events_per_s"],
        "projector_cpu_s": m["projector_cpu_s_until_drained"],
        "projector_cpu_ms_per_event": m["projector_cpu_ms_per_event"],
        "worst_p99_s": max(p99s) if p99s else None,
        "not_visible": sum(s["not_visible"] for s in m["visibility"].values()),
        "max_person_backlog": m["max_person_backlog"],
        "drained_s_after_load": m["backlog_drained_s_after_load"],
        "quiet_s_after_drain": m["projector_quiet_s_after_drain"],
        "audience_changes": m["audience_changes"],
        "load_average_1m": result.notes["load_average_1m"],
    }


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return round(statistics.median(values), 4) if values else None


def _ratio(on: float | None, off: float | None) -> float | None:
    return round(on / off, 4) if on is not None and off else None


def run(
    duration_s: float = DEFAULT_DURATION_S,
    *,
    pairs: int = DEFAULT_PAIRS,
    probes: int | None = None,
    idle_probes: int = freshness.DEFAULT_IDLE_PROBES,
    concurrency: int = freshness.DEFAULT_CONCURRENCY,
    batch: int = freshness.DEFAULT_BATCH,
) -> Result:
    """``pairs`` x (audience stage off, then on), each a ``freshness`` run of ``duration_s``
    seconds of load; the ratio of the projector's CPU per event, on / off."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side, _ in SIDES}
    load_before = os.getloadavg()
    for pair in range(pairs):
        for side, env in SIDES:
            _say(f"pair {pair + 1}/{pairs}: audience stage {side}")
            result = freshness.run(
                duration_s,
                probes=probes,
                idle_probes=idle_probes,
                concurrency=concurrency,
                batch=batch,
                env=env,
            )
            runs[side].append(summary(result))
            _say(f"audience stage {side}: {runs[side][-1]}")
    load_after = os.getloadavg()
    keys = ("projector_cpu_ms_per_event", "worst_p99_s", "max_person_backlog",
            "accepted_events_per_s")  # fmt: skip
    sides = {side: {k: _median(rs, k) for k in keys} for side, rs in runs.items()}
    on, off = sides["on"], sides["off"]
    return Result(
        name=NAME,
        params={
            "duration_s": duration_s,
            "pairs": pairs,
            "order": "off, on per pair",
            "concurrency": concurrency,
            "batch": batch,
            "audiences_on": "the five shipped audiences (tenure/domain/audiences.json)",
            "platform": "tenure up, embedded default, fresh state per run (bench.freshness)",
        },
        measured={"audiences_on": sides["on"], "runs": runs["on"]},
        baseline={"audiences_off": sides["off"], "runs": runs["off"]},
        ratio=_ratio(on["projector_cpu_ms_per_event"], off["projector_cpu_ms_per_event"]) or 0.0,
        ratio_meaning="projector CPU per accepted event with the five shipped audiences / with"
        " the audience stage off (TENURE_AUDIENCES=off), medians, same session; 1.0 = free",
        notes={
            "ratios": {
                k: _ratio(sides["on"][k], sides["off"][k])
                for k in ("worst_p99_s", "max_person_backlog", "accepted_events_per_s")
            },
            "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)],
            "projector_cpu": "from the load's start until the backlog drained, every probe"
            " was seen and the projector used < 10 % of a core over 2 s",
        },
    )
