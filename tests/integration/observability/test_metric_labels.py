"""Every process exposes /metrics, with the pipeline and business metrics, and no label value
is ever a person, device or event id that was sent."""

from __future__ import annotations

from collections import defaultdict

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tenure.storage import archive
from tenure.storage.follow_backlog import FOLLOW_PARTS
from tests.integration.observability.conftest import SCRAPED_PROCESSES as PROCESSES
from tests.integration.observability.conftest import Observed


def _ids_sent(database_url: str) -> set[str]:
    """Every id the run sent or derived: person, device and event ids, aliases, all data *_id."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """
            SELECT event_id FROM event_archive
            UNION SELECT event_id FROM ingest_ledger
            UNION SELECT person_id FROM persons
            UNION SELECT unnest(aliases) FROM persons
            UNION SELECT device_id FROM devices
            UNION SELECT person_id FROM raw_person_states
            UNION SELECT device_id FROM raw_device_states
            UNION SELECT person_id FROM raw_person_deltas
            UNION SELECT device_id FROM raw_device_deltas
            UNION SELECT person_id FROM lifecycle_transitions
            """
        ).fetchall()
        data_ids = {
            str(item)
            for envelope in archive.read_envelopes(conn)
            for key, value in (envelope.get("data") or {}).items()
            if key.endswith(("id", "ids"))
            for item in (value if isinstance(value, list) else [value])
        }
    return {r[0] for r in rows if r[0]} | data_ids


def _labels(text: str) -> dict[str, set[str]]:
    values: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for key, value in sample.labels.items():
                values[key].add(value)
    return values


def test_every_process_is_scraped_and_no_label_value_is_an_id(observed: Observed) -> None:
    ids = _ids_sent(observed.database_url)
    assert len(ids) > 100  # the simulated population really was sent
    scraped = {name for name, _ in observed.scrapes}
    assert scraped == PROCESSES
    under_load = [name for name, _ in observed.scrapes[: -len(PROCESSES)]]
    assert len(under_load) > len(PROCESSES)  # scraped repeatedly while events flowed
    all_labels: dict[str, set[str]] = defaultdict(set)
    for name, text in observed.scrapes:
        for key, values in _labels(text).items():
            leaked = values & ids
            assert not leaked, f"{name}: label {key} carries ids {sorted(leaked)[:5]}"
            all_labels[key] |= values
    # The check is not vacuous: the labels we expect are there, with domain vocabulary.
    assert {"customer_and_user", "user_only"} <= all_labels["segment"]
    assert "rejected" in all_labels["outcome"]
    assert {"archiver", "sdk-validator"} <= all_labels["worker"]


def test_pipeline_and_business_metrics_are_exposed(observed: Observed) -> None:
    last = {name: text for name, text in observed.scrapes}  # the final scrape of each process
    names = {
        name: {f.name for f in text_string_to_metric_families(text)} for name, text in last.items()
    }
    assert {"tenure_ingest_events", "tenure_ingest_publish_seconds"} <= names["ingest"]
    assert {
        "tenure_archive_records",
        "tenure_dead_letters",
        "tenure_consumer_lag",
        "tenure_archive_event_age_seconds",
        "tenure_archive_ingest_latency_seconds",
        "tenure_archive_write_seconds",
        "tenure_archive_batch_records",
    } <= names["archiver"]
    assert {"tenure_sdk_records", "tenure_dead_letters", "tenure_consumer_lag"} <= names[
        "sdk-validator"
    ]
    assert {
        "tenure_persons",
        "tenure_super_users",
        "tenure_sponsors",
        "tenure_activation_buyers",
        "tenure_activation_activated",
        "tenure_lifecycle_transitions_emitted",
        "tenure_replay_last_events",
        "tenure_business_metrics_up",
    } <= names["query"]
    assert {"tenure_replay_progress_ratio", "tenure_replay_running"} <= names["replay"]
    assert {"tenure_projector_records"} <= names["projector"]  # the apply stage
    assert {
        "tenure_projector_derived",
        "tenure_projector_backlog",
        "tenure_projector_state_cache_reads",
        "tenure_projector_state_cache_bytes",
    } <= names["deriver"]
    reads = {
        (sample.labels["kind"], sample.labels["result"]): sample.value
        for family in text_string_to_metric_families(last["deriver"])
        if family.name == "tenure_projector_state_cache_reads"
        for sample in family.samples
    }
    assert set(reads) == {(k, r) for k in ("device", "person") for r in ("hit", "miss")}
    assert {"tenure_lifecycle_transitions_published", "tenure_projector_follow_backlog"} <= (
        names["follower"]
    )
    parts = {
        sample.labels["part"]
        for family in text_string_to_metric_families(last["follower"])
        if family.name == "tenure_projector_follow_backlog"
        for sample in family.samples
    }
    assert parts == set(FOLLOW_PARTS)  # no series until the follow stage's first refresh


def test_business_gauges_equal_the_read_model(observed: Observed) -> None:
    query = dict(observed.scrapes)["query"]
    by_segment: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(query):
        if family.name == "tenure_persons":
            for sample in family.samples:
                by_segment[sample.labels["segment"]] += sample.value
    with psycopg.connect(observed.database_url) as conn:
        rows = dict(conn.execute("SELECT segment, count(*) FROM persons GROUP BY 1").fetchall())
    assert by_segment == {k: float(v) for k, v in rows.items()}
