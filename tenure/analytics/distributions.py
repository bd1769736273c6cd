"""The two distribution functions the survival core needs, in pure ``math``."""

from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["Z_95", "chi2_1_sf", "two_sided_z"]

#: ``scipy.stats.norm.ppf(0.975)``, the value lifelines uses for its default alpha=0.05.
Z_95 = 1.959963984540054


def two_sided_z(alpha: float) -> float:
    """Normal quantile ``z`` with ``P(|Z| > z) = alpha`` (1.959963984540054 for 0.05)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if alpha == 0.05:
        return Z_95
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def chi2_1_sf(x: float) -> float:
    """Survival function of the chi-square distribution with 1 degree of freedom.

    ``P(X > x) = erfc(sqrt(x / 2))``; equals ``scipy.stats.chi2.sf(x, 1)``.
    """
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    return math.erfc(math.sqrt(x / 2.0))
