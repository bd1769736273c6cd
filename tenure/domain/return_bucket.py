"""Return buckets: where a gap between engagement days is filed, at the moment it opens.

A gap is filed under the person's recent rhythm (the median of their last :data:`RECENT_GAPS`
closed gaps, in log2 bins), how many gaps they had closed (experience) and their group. The
person view carries the bucket of its open gap (``churn_inputs.bucket``), so the rule is part
of the domain; the return-time model that learns a curve per bucket is
:mod:`tenure.analytics.return_times`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

RECENT_GAPS = 5
"""The rhythm is the median of this many most recent closed gaps."""
ALL = "*"
"""The key part that stands for "any"."""
ROOT = f"{ALL}/{ALL}/{ALL}"
"""The key of the bucket of every gap."""

_RHYTHM_EDGES: tuple[tuple[float, str], ...] = (
    (1.0, "1d"),
    (2.0, "2d"),
    (4.0, "4d"),
    (8.0, "8d"),
    (16.0, "16d"),
    (32.0, "32d"),
)
_EXPERIENCE_EDGES: tuple[tuple[int, str], ...] = ((0, "0"), (2, "1-2"), (9, "3-9"), (29, "10-29"))
RHYTHMS: tuple[str, ...] = ("none", *(name for _, name in _RHYTHM_EDGES), "long")
"""Every rhythm bin :func:`rhythm_of` answers."""
EXPERIENCES: tuple[str, ...] = (*(name for _, name in _EXPERIENCE_EDGES), "30+")
"""Every experience bin :func:`experience_of` answers."""


@dataclass(frozen=True, slots=True, order=True)
class ReturnBucket:
    """Where a gap is filed: the rhythm bin, the experience bin and the group."""

    rhythm: str
    """``none`` (no closed gap yet), ``1d``, ``2d``, ``4d``... (usual gap up to that), ``long``."""
    experience: str
    """Closed gaps before this one: ``0``, ``1-2``, ``3-9``, ``10-29``, ``30+``."""
    group: str = ALL
    """The caller's group (entry path, product...); :data:`ALL` for none."""

    @property
    def key(self) -> str:
        """The bucket as one string, ``group/rhythm/experience``."""
        return f"{self.group}/{self.rhythm}/{self.experience}"

    @classmethod
    def parse(cls, key: str) -> ReturnBucket:
        """The bucket of a :attr:`key` (``group/rhythm/experience``)."""
        group, rhythm, experience = key.rsplit("/", 2)
        return cls(rhythm, experience, group)

    def lineage(self) -> tuple[str, ...]:
        """Keys from this bucket to the root, each the parent of the one before."""
        return (
            self.key,
            f"{ALL}/{self.rhythm}/{self.experience}",
            f"{ALL}/{self.rhythm}/{ALL}",
            ROOT,
        )


def rhythm_of(gaps: Sequence[int]) -> str:
    """The rhythm bin of the most recent closed gaps (``none`` without any)."""
    if not gaps:
        return "none"
    usual = float(statistics.median(gaps[-RECENT_GAPS:]))
    for edge, name in _RHYTHM_EDGES:
        if usual <= edge:
            return name
    return "long"


def experience_of(closed: int) -> str:
    """The experience bin of a person who has closed ``closed`` gaps."""
    for edge, name in _EXPERIENCE_EDGES:
        if closed <= edge:
            return name
    return "30+"


def bucket_after(gaps: Sequence[int], group: str = ALL) -> ReturnBucket:
    """The bucket of the gap that opens after the closed ``gaps`` (oldest first)."""
    return ReturnBucket(rhythm_of(gaps), experience_of(len(gaps)), group)
