"""The projector's per-kind series exist before its first view (Prometheus then sees the
first views as an increase, so rates and quantiles over a short run are not empty)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from streams.projector import metrics


def test_derived_and_view_lag_series_exist_for_every_kind_from_the_start() -> None:
    for kind in metrics.VIEW_KINDS:
        labels = {"kind": kind}
        assert REGISTRY.get_sample_value("tenure_projector_derived_total", labels) is not None
        assert (
            REGISTRY.get_sample_value("tenure_projector_view_lag_seconds_count", labels) is not None
        )
