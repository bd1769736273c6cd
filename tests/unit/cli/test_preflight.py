"""A setting that cannot work is named in one line, with the password hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenure.cli.preflight import (
    SettingError,
    check_database,
    check_kafka,
    command_settings,
    entry_settings,
    hide_password,
    platform_config,
)
from tenure.config import TenureConfig
from tenure.runtime.broker import bootstrap_addresses


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://tenure:s3cret@db:5432/tenure", "postgresql://tenure:***@db:5432/tenure"),
        ("postgres://u:p%40ss@h/d?sslmode=require", "postgres://u:***@h/d?sslmode=require"),
        ("postgresql://postgres@127.0.0.1:5432/t", "postgresql://postgres@127.0.0.1:5432/t"),
        ("postgresql://u:pw@h:notaport/d", "postgresql://u:***@h:notaport/d"),
        ("host=db password=s3cret dbname=t", "host=db password=*** dbname=t"),
        ("host=db password='a b' dbname=t", "host=db password=*** dbname=t"),
    ],
)
def test_passwords_are_hidden(url: str, shown: str) -> None:
    assert hide_password(url) == shown


def test_bootstrap_lists_parse_or_are_refused() -> None:
    assert bootstrap_addresses("k1:9092, k2:9093") == [("k1", 9092), ("k2", 9093)]
    assert bootstrap_addresses("[::1]:9092") == [("::1", 9092)]
    for bad in ("kafka", "kafka:", ":9092", "kafka:99999", "k:9092,"):
        with pytest.raises(ValueError, match="is not host:port"):
            bootstrap_addresses(bad)


def test_unset_settings_are_named() -> None:
    with pytest.raises(SettingError, match=r"^TENURE_DATABASE_URL is not set$"):
        check_database(None)
    with pytest.raises(SettingError, match=r"^TENURE_KAFKA_BOOTSTRAP is not set$"):
        check_kafka("")


def test_a_worker_without_its_servers_is_one_line_and_the_broker_is_checked_first(
    tmp_path: Path,
) -> None:
    config = TenureConfig.from_env({"TENURE_STATE_DIR": str(tmp_path)})
    with pytest.raises(SettingError, match=r"^TENURE_KAFKA_BOOTSTRAP is not set$"):
        entry_settings(config, kafka=True)
    with pytest.raises(SettingError, match=r"^TENURE_DATABASE_URL is not set$"):
        entry_settings(config, kafka=False)


def test_a_command_falls_back_to_the_running_platform_and_says_when_there_is_none(
    tmp_path: Path,
) -> None:
    config = TenureConfig.from_env({"TENURE_STATE_DIR": str(tmp_path)})
    with pytest.raises(SettingError) as error:
        command_settings(config)
    assert str(error.value) == (
        f"TENURE_DATABASE_URL is unset and no `tenure up` is running in {tmp_path.resolve()}"
    )


def test_tenure_up_checks_nothing_it_will_start_itself(tmp_path: Path) -> None:
    config = TenureConfig.from_env({"TENURE_STATE_DIR": str(tmp_path)})
    assert platform_config(config) is config
