"""The inputs of a person's churn risk, as of one day: their silence and return-time bucket.

The churn risk itself is a probability, ``P(no engagement in the next W days)``, and needs
the return-time model learned from everyone's history (``tenure/analytics/return_times.py``),
so it is not a function of one person's state: a reader computes it at read time from these
inputs and the model at the read's ``as_of`` (``tenure/analytics/churn_risk.py``,
``docs/lifecycle.md``, "Churn risk"). The view carries only what is the person's own:

* ``silence_days``: the as-of day minus the last engagement day;
* ``bucket``: the return-time bucket of the person's open gap (``group/rhythm/experience``,
  :func:`tenure.analytics.return_times.bucket_after` of their closed gaps).

A person with no engagement has neither (no relationship to lose yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from tenure.domain.return_bucket import bucket_after


@dataclass(frozen=True, slots=True)
class ChurnInputs:
    """What the churn probability of a person is computed from, as of one day."""

    silence_days: int | None
    """Days since the last engagement day; ``None`` without engagement."""
    bucket: str | None
    """The return-time bucket of the open gap (``group/rhythm/experience``); ``None``
    without engagement."""


NO_ENGAGEMENT = ChurnInputs(None, None)
"""The churn inputs of a person with no engagement."""


def churn_inputs(days: Sequence[date], today: date) -> ChurnInputs:
    """The churn inputs on ``today`` from the engagement days (days after ``today`` ignored)."""
    known = sorted({day for day in days if day <= today})
    if not known:
        return NO_ENGAGEMENT
    bucket = bucket_after([(later - earlier).days for earlier, later in pairwise(known)])
    return churn_inputs_at(known[-1], bucket.key, today)


def churn_inputs_at(last_day: date, bucket: str | None, today: date) -> ChurnInputs:
    """The churn inputs on ``today`` of a person last engaged on ``last_day`` whose open gap
    is in ``bucket`` (neither changes without new facts).

    The only part of the view that changes every day with no new facts: the read model
    stores it as of the row's ``as_of`` and readers age it to a later day with this
    function (``docs/projection.md``, "Time").
    """
    return ChurnInputs((today - last_day).days, bucket)
