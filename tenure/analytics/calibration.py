"""How good a risk score is: ranking (AUC), accuracy (Brier) and calibration by decile.

Pure functions of (scores, outcomes) with outcomes 0/1; no I/O, no numpy needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def _check(scores: Sequence[float], outcomes: Sequence[int]) -> None:
    if len(scores) != len(outcomes):
        raise ValueError("scores and outcomes differ in length")
    if any(y not in (0, 1) for y in outcomes):
        raise ValueError("outcomes must be 0 or 1")


def auc(scores: Sequence[float], outcomes: Sequence[int]) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half.

    Computed from average ranks (the Mann-Whitney U statistic). Raises ``ValueError``
    when only one class is present.
    """
    _check(scores, outcomes)
    positives = sum(outcomes)
    negatives = len(outcomes) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both outcomes")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1
        rank_sum += average_rank * sum(outcomes[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def brier(probabilities: Sequence[float], outcomes: Sequence[int]) -> float:
    """Mean squared difference between the predicted probability and the 0/1 outcome."""
    _check(probabilities, outcomes)
    if not outcomes:
        raise ValueError("Brier score of nothing")
    return sum((p - y) ** 2 for p, y in zip(probabilities, outcomes, strict=True)) / len(outcomes)


@dataclass(frozen=True, slots=True)
class ReliabilityRow:
    """One bin of a reliability table: how many, the mean prediction and the observed rate."""

    count: int
    mean_prediction: float
    observed_rate: float

    @property
    def deviation(self) -> float:
        """``|observed rate - mean prediction|``."""
        return abs(self.observed_rate - self.mean_prediction)


def reliability(
    probabilities: Sequence[float], outcomes: Sequence[int], bins: int = 10
) -> list[ReliabilityRow]:
    """The reliability table by quantile of prediction (deciles with ``bins=10``).

    People are sorted by prediction (ties by outcome-independent input order) and cut into
    ``bins`` groups of equal size (the first ones one larger when it does not divide).
    """
    _check(probabilities, outcomes)
    if bins <= 0:
        raise ValueError("bins must be positive")
    order = sorted(range(len(probabilities)), key=lambda i: probabilities[i])
    size, extra = divmod(len(order), bins)
    rows: list[ReliabilityRow] = []
    start = 0
    for b in range(bins):
        end = start + size + (1 if b < extra else 0)
        chosen = order[start:end]
        start = end
        if not chosen:
            continue
        rows.append(
            ReliabilityRow(
                len(chosen),
                sum(probabilities[i] for i in chosen) / len(chosen),
                sum(outcomes[i] for i in chosen) / len(chosen),
            )
        )
    return rows


def max_deviation(rows: Sequence[ReliabilityRow]) -> float:
    """The largest ``|observed - predicted|`` over the rows of a reliability table."""
    return max((row.deviation for row in rows), default=0.0)
