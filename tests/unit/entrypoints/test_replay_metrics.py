"""Replay progress gauges (``tenure replay --metrics-port``)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tenure.entrypoints import replay_metrics


def test_progress_ratio_per_phase_and_running_flag() -> None:
    replay_metrics.start()
    assert REGISTRY.get_sample_value("tenure_replay_running") == 1.0
    replay_metrics.report("reading archive", 5000, 20000)
    replay_metrics.report("folding", 0, 0)
    ratio = "tenure_replay_progress_ratio"
    assert REGISTRY.get_sample_value(ratio, {"phase": "reading archive"}) == 0.25
    assert REGISTRY.get_sample_value(ratio, {"phase": "folding"}) == 1.0
    assert REGISTRY.get_sample_value("tenure_replay_phase_items", {"phase": "reading archive"}) == (
        20000.0
    )
    replay_metrics.finish()
    assert REGISTRY.get_sample_value("tenure_replay_running") == 0.0
