from __future__ import annotations

from pathlib import Path

import pytest

from tenure.config import SETTINGS, Settings, TenureConfig, settings_table_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults() -> None:
    config = TenureConfig.from_env({})
    assert config.kafka_bootstrap is None and config.database_url is None
    assert config.topic_partitions == 4 and config.future_tolerance_s == 300
    assert config.max_batch_events == 1000 and config.max_body_bytes == 1 << 20
    assert config.projector_cache_mb == 128
    assert TenureConfig.from_env({"TENURE_PROJECTOR_CACHE_MB": "64"}).projector_cache_mb == 64


def test_env_overrides_and_empty_means_default() -> None:
    config = TenureConfig.from_env(
        {
            "TENURE_KAFKA_BOOTSTRAP": "k:9092",
            "TENURE_TOPIC_PARTITIONS": "12",
            "TENURE_DATABASE_URL": "",
        }
    )
    assert config.kafka_bootstrap == "k:9092" and config.topic_partitions == 12
    assert config.database_url is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TENURE_TOPIC_PARTITIONS", "four", "must be an integer"),
        ("TENURE_TOPIC_PARTITIONS", "0", "at least 1"),
        ("TENURE_FUTURE_TOLERANCE_S", "-1", "must not be negative"),
        ("TENURE_LOG_FORMAT", "xml", "must be one of text, json"),
        ("TENURE_LOG_LEVEL", "loud", "must be one of DEBUG, INFO"),
        ("TENURE_PROJECTOR_CACHE_MB", "7", "at least 8"),
        ("TENURE_PROJECTOR_CACHE_MB", "lots", "must be an integer"),
        ("TENURE_AUDIENCES", "maybe", "must be on or off"),
    ],
)
def test_bad_values_are_clear_errors(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        TenureConfig.from_env({name: value})
    assert name in str(error.value) or "TOLERANCE" in str(error.value)


def test_the_audience_stage_is_on_unless_switched_off() -> None:
    assert TenureConfig.from_env({}).audience_stage is True
    assert TenureConfig.from_env({"TENURE_AUDIENCES": "OFF"}).audience_stage is False
    assert TenureConfig.from_env({"TENURE_AUDIENCES": "on"}).audience_stage is True


def test_log_settings_default_and_any_case() -> None:
    assert TenureConfig.from_env({}).log_format == "text"
    config = TenureConfig.from_env({"TENURE_LOG_FORMAT": "JSON", "TENURE_LOG_LEVEL": "debug"})
    assert (config.log_format, config.log_level) == ("json", "DEBUG")


def test_docs_table_matches_settings() -> None:
    text = DOCS.read_text()
    start = text.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end].strip() == settings_table_markdown()
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)


def test_settings_give_the_broker_only_when_one_was_checked() -> None:
    config = TenureConfig.from_env({})
    assert Settings(config, "postgresql:///x", "k:9092").broker() == "k:9092"
    with pytest.raises(ValueError, match="needs Kafka"):
        Settings(config, "postgresql:///x").broker()


def test_replay_workers_default_to_one_per_core_and_are_never_negative() -> None:
    assert TenureConfig.from_env({}).replay_workers == 0
    assert TenureConfig.from_env({"TENURE_REPLAY_WORKERS": "3"}).replay_workers == 3
    with pytest.raises(ValueError, match="TENURE_REPLAY_WORKERS must not be negative"):
        TenureConfig.from_env({"TENURE_REPLAY_WORKERS": "-1"})


def test_intake_nice_defaults_to_10_and_is_a_nice_value_that_lowers_priority() -> None:
    assert TenureConfig.from_env({}).intake_nice == 10
    assert TenureConfig.from_env({"TENURE_INTAKE_NICE": "0"}).intake_nice == 0
    with pytest.raises(ValueError, match="TENURE_INTAKE_NICE must be 0-19, got -5"):
        TenureConfig.from_env({"TENURE_INTAKE_NICE": "-5"})
    with pytest.raises(ValueError, match="TENURE_INTAKE_NICE must be 0-19"):
        TenureConfig.from_env({"TENURE_INTAKE_NICE": "20"})


def test_database_session_nice_defaults_to_unchanged_and_is_a_nice_value() -> None:
    assert TenureConfig.from_env({}).database_session_nice == 0
    config = TenureConfig.from_env({"TENURE_DATABASE_SESSION_NICE": "10"})
    assert config.database_session_nice == 10
    for wrong in ("-1", "20"):
        with pytest.raises(ValueError, match="TENURE_DATABASE_SESSION_NICE must be 0-19"):
            TenureConfig.from_env({"TENURE_DATABASE_SESSION_NICE": wrong})
