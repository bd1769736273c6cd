"""``validation``: events/s of ``validate_event`` vs decoding the same bytes with orjson.

Both sides see the same encoded events (the realistic mix, ~10% broken). The baseline is
``orjson.loads`` of every event; the measured side is ``validate_event`` on the decoded
values (decoding excluded). ``ratio`` = validation time / decode time: how many decodes one
validation costs. Valid and rejected events are also timed apart, because a rejection is
explained by the pure-Python jsonschema validator while a valid event only meets the
jsonschema-rs ``is_valid`` fast path (when installed).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench.events import event_mix
from bench.result import Result, rate
from tenure.contract import Rejection, validate_event
from tenure.contract.validation import DEFAULT_FUTURE_TOLERANCE, accelerated, warm_up

NAME = "validation"
DEFAULT_SIZE = 20_000
INVALID_SHARE = 0.1


def _timed(work: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` runs of ``work`` (after one warm-up run)."""
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(size: int = DEFAULT_SIZE, repeats: int = 5) -> Result:
    """Time validation of ``size`` events against decoding them; return the result line."""
    warm_up()
    now = datetime.now(UTC)
    tolerance = DEFAULT_FUTURE_TOLERANCE
    encoded = [orjson.dumps(e) for e in event_mix(size, invalid_share=INVALID_SHARE, now=now)]
    decoded: list[Any] = [orjson.loads(b) for b in encoded]
    outcomes = [validate_event(e, now=now, future_tolerance=tolerance) for e in decoded]
    valid = [e for e, o in zip(decoded, outcomes, strict=True) if not isinstance(o, Rejection)]
    invalid = [e for e, o in zip(decoded, outcomes, strict=True) if isinstance(o, Rejection)]

    def decode_all() -> None:
        for b in encoded:
            orjson.loads(b)

    def validate(events: list[Any]) -> Callable[[], None]:
        def work() -> None:
            for e in events:
                validate_event(e, now=now, future_tolerance=tolerance)

        return work

    t_decode = _timed(decode_all, repeats)
    t_mix = _timed(validate(decoded), repeats)
    t_valid = _timed(validate(valid), repeats) if valid else 0.0
    t_invalid = _timed(validate(invalid), repeats) if invalid else 0.0
    return Result(
        name=NAME,
        params={
            "size": size,
            "repeats": repeats,
            "invalid_share": round(len(invalid) / size, 4),
            "mean_event_bytes": round(sum(map(len, encoded)) / size, 1),
        },
        measured={
            "events_per_s": rate(size, t_mix),
            "us_per_event": round(t_mix / size * 1e6, 2),
            "valid_us_per_event": round(t_valid / max(1, len(valid)) * 1e6, 2),
            "invalid_us_per_event": round(t_invalid / max(1, len(invalid)) * 1e6, 2),
            "accelerated": accelerated(),
        },
        baseline={
            "what": "orjson.loads of the same bytes",
            "events_per_s": rate(size, t_decode),
            "us_per_event": round(t_decode / size * 1e6, 3),
        },
        ratio=t_mix / t_decode,
        ratio_meaning="validate_event time / orjson.loads time (cost; lower is better)",
        notes={"future_tolerance_s": tolerance / timedelta(seconds=1)},
    )
