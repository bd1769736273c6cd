"""The derive stage's own freshness figure from its histogram,
``tenure_projector_view_lag_seconds`` (from a key's queueing for derive until a pass had
written its view), between two scrapes of the projector's processes.

The ``freshness`` benchmark reports it beside the probes' visibility: the difference is the
time before the derive queue (ingest, the broker, the apply stage) and after the pass (its
commit, the query, the probe's polling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

METRIC = "tenure_projector_view_lag_seconds"


def _buckets(samples: Mapping[str, float], kind: str) -> dict[float, float]:
    """Cumulative counts by upper bound of ``kind``'s buckets in one scrape."""
    prefix = f"{METRIC}_bucket{{"
    found: dict[float, float] = {}
    for key, value in samples.items():
        if not key.startswith(prefix):
            continue
        labels = dict(part.split("=", 1) for part in key[len(prefix) : -1].split(","))
        if labels.get("kind") == kind:
            found[float(labels["le"])] = value
    return found


def quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """The ``q`` quantile of cumulative ``buckets`` (upper bound -> count), interpolated
    linearly inside its bucket as Prometheus's ``histogram_quantile`` does (the highest
    finite bound when it falls in ``+Inf``); ``None`` without observations."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def view_lag(
    before: Mapping[str, float], after: Mapping[str, float], kinds: Sequence[str]
) -> dict[str, Any]:
    """Per kind: views written between the scrapes and their lag's p50/p99/share under 2 s."""
    out: dict[str, Any] = {}
    for kind in kinds:
        first, last = _buckets(before, kind), _buckets(after, kind)
        moved = {b: last[b] - first.get(b, 0.0) for b in last}
        total = moved.get(float("inf"), 0.0)
        p50, p99 = quantile(moved, 0.5), quantile(moved, 0.99)
        out[kind] = {
            "views": int(total),
            "p50_s": None if p50 is None else round(p50, 3),
            "p99_s": None if p99 is None else round(p99, 3),
            "share_within_2s": round(moved.get(2.0, 0.0) / total, 4) if total else None,
        }
    return out
