"""A wrong TENURE_DATABASE_URL or TENURE_KAFKA_BOOTSTRAP is one line naming it, not a traceback."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tenure.cli.preflight import SettingError, check_kafka
from tenure.config import OS_CHOSEN_PORTS
from tenure.runtime.broker import LocalBroker, broker_answers

PASSWORD = "s3cret-pw"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tenure(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    environ.update(
        **OS_CHOSEN_PORTS,
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout
    assert lines[0].startswith("tenure: ")
    return lines[0]


DATABASE_COMMANDS = [
    ("migrate",),
    ("token", "create", "--producer", "x"),
    ("token", "list"),
    ("replay",),
    ("serve", "query"),
    ("worker", "projector"),
]


@pytest.mark.kafka
@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_an_unreachable_database_is_one_line(command: tuple[str, ...], broker: LocalBroker) -> None:
    port = _closed_port()
    url = f"postgresql://tenure:{PASSWORD}@127.0.0.1:{port}/tenure"
    line = _one_line(
        _tenure(*command, TENURE_DATABASE_URL=url, TENURE_KAFKA_BOOTSTRAP=broker.bootstrap)
    )
    assert line.startswith(
        "tenure: cannot connect to Postgres at "
        f"TENURE_DATABASE_URL=postgresql://tenure:***@127.0.0.1:{port}/tenure (password hidden): "
    )
    assert "Connection refused" in line


KAFKA_COMMANDS = [
    ("topics", "create"),
    ("serve", "ingest"),
    ("worker", "archiver"),
    ("worker", "projector"),
    ("worker", "sdk-validator"),
]


@pytest.mark.postgres
@pytest.mark.parametrize("command", KAFKA_COMMANDS, ids=" ".join)
def test_an_unreachable_broker_is_one_line(command: tuple[str, ...], database_url: str) -> None:
    port = _closed_port()
    line = _one_line(
        _tenure(
            *command, TENURE_DATABASE_URL=database_url, TENURE_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}"
        )
    )
    assert line.startswith(
        f"tenure: cannot reach Kafka at TENURE_KAFKA_BOOTSTRAP=127.0.0.1:{port}: "
    )


@pytest.mark.postgres
def test_something_that_is_not_kafka_is_one_line(database_url: str) -> None:
    postgres_port = database_url.rsplit(":", 1)[1].split("/")[0]
    bootstrap = f"127.0.0.1:{postgres_port}"
    line = _one_line(_tenure("topics", "create", TENURE_KAFKA_BOOTSTRAP=bootstrap))
    assert line.startswith(f"tenure: cannot use Kafka at TENURE_KAFKA_BOOTSTRAP={bootstrap}: ")


def test_malformed_settings_are_one_line(tmp_path: Path) -> None:
    line = _one_line(_tenure("migrate", TENURE_STATE_DIR=str(tmp_path)))
    assert line == (
        f"tenure: TENURE_DATABASE_URL is unset and no `tenure up` is running in {tmp_path}"
    )
    line = _one_line(_tenure("topics", "create", TENURE_KAFKA_BOOTSTRAP="kafka"))
    assert "TENURE_KAFKA_BOOTSTRAP=kafka" in line and "host:port" in line
    line = _one_line(_tenure("migrate", TENURE_DATABASE_URL="postgresql://u:" + PASSWORD + "@"))
    assert "TENURE_DATABASE_URL=" in line
    line = _one_line(_tenure("migrate", TENURE_LOG_FORMAT="xml"))
    assert line == "tenure: TENURE_LOG_FORMAT must be one of text, json, got 'xml'"


def test_a_refused_kafka_port_is_one_line_in_process() -> None:
    port = _closed_port()
    with pytest.raises(SettingError) as error:
        check_kafka(f"127.0.0.1:{port}")
    assert str(error.value) == (
        f"cannot reach Kafka at TENURE_KAFKA_BOOTSTRAP=127.0.0.1:{port}: "
        f"Connection refused (127.0.0.1:{port})"
    )


def test_the_broker_probe_logs_nothing_while_the_port_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A starting broker is probed until it listens; kafka-python logged each try as ERROR."""
    caplog.set_level(logging.DEBUG)
    assert broker_answers(f"127.0.0.1:{_closed_port()}") is False
    assert [r for r in caplog.records if r.name.startswith("kafka")] == []
