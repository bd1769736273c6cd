"""The business gauges: families from a snapshot, labels from the domain vocabulary only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.query.business_metrics import PERSON_LABELS, BusinessMetrics, Snapshot, families

SNAP = Snapshot(
    persons=[
        ("customer_and_user", "active", "weak", "silver", "repeat_buyer", 7, 2, 1, 5, 6),
        ("customer_only", "churned", "micro", "bronze", "one_time_buyer", 3, 0, 2, 0, 3),
        ("user_only", "new", "micro", "none", "none", 4, 0, 0, 0, 0),
    ],
    transitions=[("segment", 10, 1), ("stage", 12, 0)],
    max_event_time=1_790_000_000.0,
    checkpoint=(1_790_000_100.0, 1234, 1300),
    seconds=0.01,
)


def _values(snap: Snapshot) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in families(snap):
        out[family.name] = [(s.labels, s.value) for s in family.samples]
    return out


def test_persons_by_segment_stage_level_tier_and_buyer_kind() -> None:
    values = _values(SNAP)
    persons = values["tenure_persons"]
    assert len(persons) == 3
    assert all(tuple(labels) == PERSON_LABELS for labels, _ in persons)
    assert sum(v for _, v in persons) == 14
    assert values["tenure_super_users"] == [({}, 2.0)]
    assert values["tenure_sponsors"] == [({}, 3.0)]
    assert values["tenure_activation_activated"] == [({}, 5.0)]
    assert values["tenure_activation_buyers"] == [({}, 9.0)]
    assert values["tenure_lifecycle_transitions_emitted"] == [
        ({"kind": "segment"}, 10.0),
        ({"kind": "stage"}, 12.0),
    ]
    assert values["tenure_lifecycle_transitions_unpublished"][0] == ({"kind": "segment"}, 1.0)
    assert values["tenure_replay_last_events"] == [({}, 1234.0)]


def test_without_a_replay_or_progress_those_gauges_are_absent() -> None:
    values = _values(Snapshot())
    assert "tenure_replay_last_events" not in values
    assert "tenure_projection_max_event_timestamp_seconds" not in values
    assert values["tenure_persons"] == []


def test_collector_without_a_pool_reports_down_and_nothing_else() -> None:
    registry = CollectorRegistry()
    registry.register(BusinessMetrics())
    names = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert names == {"tenure_business_metrics_up"}
    assert registry.get_sample_value("tenure_business_metrics_up") == 0.0
