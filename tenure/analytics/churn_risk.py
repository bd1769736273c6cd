"""Churn risk at one as-of: P(no engagement in the next W days), with what it rests on.

A person's churn risk is :meth:`ReturnTimeModel.silent_probability` of the return-time
model fitted at the read's ``as_of`` (``tenure/analytics/return_times.py``), at the person's
silence and return-time bucket (the inputs their view stores, ``tenure/domain/churn.py``),
rounded to :data:`DECIMALS` decimals. Every reader goes through :class:`ChurnRiskTable`, so
``GET /v1/persons/{id}``, the persons list and ``GET /v1/churn/persons/{id}`` answer the
same number.

Because the probability is non-decreasing in the silence, "risk at least ``x``" is, per
bucket, "silent at least ``s_min(bucket, x)`` days", i.e. "last engagement on or before
``as_of - s_min``": :meth:`ChurnRiskTable.last_day_cutoffs` gives that day for every bucket
a person can be filed under (a few dozen), so a list can filter a million rows with one
comparison per row instead of evaluating the model per person.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date

from tenure.analytics.return_times import (
    ALL,
    EXPERIENCES,
    MAX_AGE_DAYS,
    RHYTHMS,
    ROOT,
    ReturnBucket,
    ReturnTimeModel,
)

__all__ = [
    "ANY_DAY",
    "CARE_THRESHOLD",
    "DECIMALS",
    "NO_DAY",
    "ChurnEstimate",
    "ChurnRiskTable",
]

CARE_THRESHOLD = 0.5
"""The documented "care before churn" threshold (docs/lifecycle.md): chosen from the
evaluation, at 0.5 about 79 % of flagged people do go silent and 70 % of leavers are caught."""
DECIMALS = 4
"""The churn risk is answered (and compared with thresholds) rounded to this many decimals."""
ANY_DAY = date.max
"""The cutoff of a bucket whose risk reaches the threshold at zero silence: any last day."""
NO_DAY = date.min
"""The cutoff of a bucket whose risk never reaches the threshold: no last day."""


@dataclass(frozen=True, slots=True)
class ChurnEstimate:
    """A person's churn risk at one as-of and what it was computed from."""

    probability: float | None
    """P(no engagement in the next W days); ``None`` without engagement or before the model
    has learned anything."""
    silence_days: int | None
    """Days from the last engagement day to the as-of day (0 if the last day is later)."""
    bucket: str | None
    """The person's return-time bucket (``group/rhythm/experience``)."""
    curve: str | None
    """The key of the bucket whose curve the estimate came from (after shrinkage fallback)."""
    gaps_at_risk: int | None
    """How many gaps that curve rests on at the next day of silence."""
    care: bool
    """``probability >= CARE_THRESHOLD`` and the person is not churned yet."""


@dataclass(frozen=True, slots=True)
class ChurnRiskTable:
    """The return-time model read at one as-of day for one window W."""

    model: ReturnTimeModel
    as_of: date
    window_days: int

    @property
    def learned(self) -> bool:
        """Whether the model has learned anything (no gap at all: no probability)."""
        return ROOT in self.model.hazards

    def probability(self, bucket: ReturnBucket, silence: int) -> float:
        """The churn risk of a person in ``bucket`` silent ``silence`` days, rounded."""
        return round(self.model.silent_probability(bucket, silence, self.window_days), DECIMALS)

    def estimate(self, bucket: str | None, last_engagement: date | None) -> ChurnEstimate:
        """The churn risk of a person from their stored inputs (``None``: no engagement)."""
        if bucket is None or last_engagement is None:
            return ChurnEstimate(None, None, None, None, None, False)
        silence = max(0, (self.as_of - last_engagement).days)
        if not self.learned:
            return ChurnEstimate(None, silence, bucket, None, None, False)
        parsed = ReturnBucket.parse(bucket)
        _, curve = self.model.hazard(parsed)
        probability = self.probability(parsed, silence)
        return ChurnEstimate(
            probability,
            silence,
            bucket,
            curve,
            int(self.model.at_risk[curve][min(silence + 1, MAX_AGE_DAYS)]),
            probability >= CARE_THRESHOLD and silence < self.window_days,
        )

    def min_silence(self, bucket: ReturnBucket, threshold: float) -> int | None:
        """The fewest silent days at which the risk of ``bucket`` is at least ``threshold``
        (``None``: never, up to the model's horizon, after which the risk stays constant)."""
        silences = range(MAX_AGE_DAYS + 1)
        first = bisect_left(silences, True, key=lambda s: self.probability(bucket, s) >= threshold)
        return first if first < len(silences) else None

    def buckets(self) -> list[ReturnBucket]:
        """Every bucket a person can be filed under in a group the model knows (or ``*``)."""
        groups = sorted({key.rsplit("/", 2)[0] for key in self.model.hazards} | {ALL})
        return [ReturnBucket(r, e, g) for g in groups for r in RHYTHMS for e in EXPERIENCES]

    def last_day_cutoffs(self, threshold: float) -> dict[str, date]:
        """Per bucket key (every one of :meth:`buckets`), the latest last-engagement day with
        a risk of at least ``threshold`` at this as-of: :data:`ANY_DAY` when zero silence
        suffices, :data:`NO_DAY` when it is never reached. Empty before the model has
        learned anything (nobody has a risk)."""
        if not self.learned:
            return {}
        cutoffs: dict[str, date] = {}
        for bucket in self.buckets():
            silence = self.min_silence(bucket, threshold)
            if silence is None:
                cutoffs[bucket.key] = NO_DAY
            elif silence == 0:
                cutoffs[bucket.key] = ANY_DAY
            else:
                cutoffs[bucket.key] = date.fromordinal(self.as_of.toordinal() - silence)
        return cutoffs
