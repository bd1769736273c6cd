"""The machine-readable result line every benchmark prints."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Result:
    """One benchmark's outcome: what was measured, the same-run baseline, and their ratio."""

    name: str
    params: dict[str, Any]
    measured: dict[str, Any]
    baseline: dict[str, Any]
    ratio: float
    ratio_meaning: str
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One line of JSON (keys in a stable order)."""
        return json.dumps(
            {
                "name": self.name,
                "params": self.params,
                "measured": self.measured,
                "baseline": self.baseline,
                "ratio": round(self.ratio, 4),
                "ratio_meaning": self.ratio_meaning,
                "notes": self.notes,
                "machine": machine(),
            },
            sort_keys=False,
        )


def machine() -> dict[str, Any]:
    """Facts about the machine that matter for reading the numbers."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def rate(count: int, seconds: float) -> float:
    """``count / seconds`` rounded for printing (0 when no time passed)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest-rank inclusive method."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    if q >= 100:
        return max(values)
    return cuts[max(0, min(98, round(q) - 1))]
