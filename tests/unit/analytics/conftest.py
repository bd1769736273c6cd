"""lifelines as a test-time oracle for tenure.analytics (never imported by the package)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

TOL = 1e-9

# Largest |ours - lifelines| seen per quantity during the session (printed at the end).
MAX_DIFF: dict[str, float] = {}


def assert_close(name: str, ours: Sequence[float] | float, ref: Any) -> None:
    """Equal within TOL absolute (inf == inf, nan == nan); records the worst difference."""
    a = np.atleast_1d(np.asarray(ours, dtype=float))
    b = np.atleast_1d(np.asarray(ref, dtype=float))
    assert a.shape == b.shape, (name, a.shape, b.shape)
    same_nonfinite = (a == b) | (np.isnan(a) & np.isnan(b))
    finite = np.isfinite(a) & np.isfinite(b)
    assert np.all(same_nonfinite | finite), (name, a, b)
    diff = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
    MAX_DIFF[name] = max(MAX_DIFF.get(name, 0.0), diff)
    assert diff <= TOL, (name, diff, a, b)


@dataclass
class KMReference:
    timeline: np.ndarray
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    median: float
    median_ci: tuple[float, float]
    rmst: dict[float, float] = field(default_factory=dict)


class Oracle:
    """Thin wrappers around lifelines returning plain numbers."""

    def __init__(self) -> None:
        from lifelines import KaplanMeierFitter
        from lifelines.statistics import logrank_test
        from lifelines.utils import median_survival_times, restricted_mean_survival_time

        self._kmf = KaplanMeierFitter
        self._logrank = logrank_test
        self._median_times = median_survival_times
        self._rmst = restricted_mean_survival_time

    @staticmethod
    def assert_close(name: str, ours: Sequence[float] | float, ref: Any) -> None:
        assert_close(name, ours, ref)

    def km(
        self,
        durations: Sequence[int],
        observed: Sequence[bool],
        horizons: Sequence[float] = (),
        alpha: float = 0.05,
    ) -> KMReference:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kmf = self._kmf(alpha=alpha).fit(list(durations), [int(o) for o in observed])
            med_ci = self._median_times(kmf.confidence_interval_)
            rmst = {h: float(self._rmst(kmf, t=h)) for h in horizons}
        et = kmf.event_table
        return KMReference(
            timeline=np.asarray(kmf.timeline, dtype=float),
            survival=kmf.survival_function_.iloc[:, 0].to_numpy(dtype=float),
            ci_low=kmf.confidence_interval_.iloc[:, 0].to_numpy(dtype=float),
            ci_high=kmf.confidence_interval_.iloc[:, 1].to_numpy(dtype=float),
            at_risk=et["at_risk"].to_numpy(dtype=float),
            events=et["observed"].to_numpy(dtype=float),
            censored=et["censored"].to_numpy(dtype=float),
            median=float(kmf.median_survival_time_),
            median_ci=(float(med_ci.iloc[0, 0]), float(med_ci.iloc[0, 1])),
            rmst=rmst,
        )

    def logrank(
        self,
        durations_a: Sequence[int],
        observed_a: Sequence[bool],
        durations_b: Sequence[int],
        observed_b: Sequence[bool],
    ) -> tuple[float, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = self._logrank(
                list(durations_a),
                list(durations_b),
                [int(o) for o in observed_a],
                [int(o) for o in observed_b],
            )
        return float(res.test_statistic), float(res.p_value)


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    return Oracle()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MAX_DIFF:
        terminalreporter.write_sep("-", "tenure.analytics: max |ours - lifelines|")
        for name, diff in sorted(MAX_DIFF.items()):
            terminalreporter.write_line(f"{name:>14}: {diff:.3e}")
