"""Pure survival-analysis core: life tables, Kaplan-Meier, log-rank, cohorts, time-to-X.

No I/O and no lifelines at run time; results equal lifelines 0.30.3 (tested to 1e-9).
"""

from tenure.analytics.cohorts import CohortRetention, CohortRow, cohort_week_start, week_index
from tenure.analytics.curves import (
    Incidence,
    TimeToEventKind,
    WindowRate,
    cumulative_incidence,
    life_table_from_observations,
    rate_within,
)
from tenure.analytics.distributions import Z_95, chi2_1_sf, two_sided_z
from tenure.analytics.kaplan_meier import KaplanMeierCurve, KMPoint, kaplan_meier
from tenure.analytics.lifetable import LifeTable, LifeTableRow
from tenure.analytics.logrank import LogRankResult, logrank_test
from tenure.analytics.observation import (
    DEFAULT_CHURN_AFTER_DAYS,
    Observation,
    tenure_observation,
    time_to_event,
)
from tenure.analytics.summaries import (
    MedianSurvival,
    median_survival,
    qth_survival_time,
    restricted_mean_survival_time,
)

__all__ = [
    "DEFAULT_CHURN_AFTER_DAYS",
    "Z_95",
    "CohortRetention",
    "CohortRow",
    "Incidence",
    "KMPoint",
    "KaplanMeierCurve",
    "LifeTable",
    "LifeTableRow",
    "LogRankResult",
    "MedianSurvival",
    "Observation",
    "TimeToEventKind",
    "WindowRate",
    "chi2_1_sf",
    "cohort_week_start",
    "cumulative_incidence",
    "kaplan_meier",
    "life_table_from_observations",
    "logrank_test",
    "median_survival",
    "qth_survival_time",
    "rate_within",
    "restricted_mean_survival_time",
    "tenure_observation",
    "time_to_event",
    "two_sided_z",
    "week_index",
]
