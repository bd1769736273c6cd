"""AUC, Brier score and the reliability table against known values and lifelines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines.utils import concordance_index

from tenure.analytics.calibration import ReliabilityRow, auc, brier, max_deviation, reliability


def test_auc_known_values() -> None:
    assert auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # A tie between a positive and a negative counts half.
    assert auc([0.1, 0.5, 0.5], [0, 0, 1]) == 0.75
    with pytest.raises(ValueError):
        auc([0.1, 0.2], [1, 1])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 1)), min_size=2, max_size=60).filter(
        lambda xs: 0 < sum(y for _, y in xs) < len(xs)
    )
)
def test_auc_equals_lifelines_concordance_for_a_binary_outcome(
    pairs: list[tuple[int, int]],
) -> None:
    scores = [float(s) for s, _ in pairs]
    outcomes = [y for _, y in pairs]
    assert auc(scores, outcomes) == pytest.approx(concordance_index(outcomes, scores), abs=1e-12)


def test_brier_known_values() -> None:
    assert brier([1.0, 0.0], [1, 0]) == 0.0
    assert brier([0.0, 1.0], [1, 0]) == 1.0
    assert brier([0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]) == pytest.approx(0.1875)
    assert brier([0.7, 0.2], [1, 0]) == pytest.approx((0.09 + 0.04) / 2)


def test_reliability_cuts_by_prediction_into_equal_groups() -> None:
    probabilities = [i / 20 for i in range(20)]
    outcomes = [1 if i % 2 else 0 for i in range(20)]
    rows = reliability(probabilities, outcomes, bins=4)
    assert [r.count for r in rows] == [5, 5, 5, 5]
    assert rows[0] == ReliabilityRow(5, pytest.approx(0.1), 0.4)  # type: ignore[arg-type]
    assert rows[3].mean_prediction == pytest.approx(0.85)
    assert rows[3].observed_rate == 0.6
    assert max_deviation(rows) == pytest.approx(0.3)
    uneven = reliability([0.1] * 7, [1] * 7, bins=3)
    assert [r.count for r in uneven] == [3, 2, 2]
    assert max_deviation(uneven) == pytest.approx(0.9)


def test_a_calibrated_score_has_small_deviation() -> None:
    probabilities = [p / 10 for p in range(10) for _ in range(10)]
    outcomes = [1 if i < p else 0 for p in range(10) for i in range(10)]
    assert max_deviation(reliability(probabilities, outcomes)) == pytest.approx(0.0)
