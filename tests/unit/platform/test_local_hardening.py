"""Pure parts of the platform's fault handling and hardening (no I/O)."""

from __future__ import annotations

import json

import pytest

from tenure.platform.status import PlatformStatus, redact_url
from tenure.platform.supervisor import probe_host
from tenure.runtime.database import Backoff
from tenure.runtime.postgres import _TRUST_LINE


def test_redact_url_hides_only_the_password() -> None:
    url = "postgresql://postgres:s3cr-et_X@127.0.0.1:5432/tenure"
    assert redact_url(url) == "postgresql://postgres:***@127.0.0.1:5432/tenure"
    assert redact_url("postgresql://postgres@127.0.0.1:5432/tenure").endswith(
        "@127.0.0.1:5432/tenure"
    )
    assert (
        redact_url("postgresql://u:p@h/db?sslmode=require")
        == "postgresql://u:***@h/db?sslmode=require"
    )


def test_status_json_redacts_on_request_only() -> None:
    status = PlatformStatus(
        pid=1,
        started_at="",
        ingest_url="",
        query_url="",
        metrics_urls={},
        kafka_bootstrap="",
        database_url="postgresql://postgres:pw123@127.0.0.1:1/tenure",
        broker="",
        postgres="embedded",
        processes={},
        pending_recovery=["republish"],
    )
    assert "pw123" in json.loads(status.to_json())["database_url"]
    shown = json.loads(status.to_json(redact=True))
    assert "pw123" not in shown["database_url"] and shown["pending_recovery"] == ["republish"]


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    waits = Backoff(first_s=0.5, cap_s=5.0)
    assert [waits.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    waits.reset()
    assert waits.next_delay() == 0.5


@pytest.mark.parametrize(
    ("host", "reach"),
    [("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("::", "::1"), ("10.0.0.5", "10.0.0.5")],
)
def test_probe_host_reaches_a_wildcard_listener_on_loopback(host: str, reach: str) -> None:
    assert probe_host(host) == reach


@pytest.mark.parametrize(
    ("line", "converted"),
    [
        (
            "local   all             all                                     trust",
            "local   all             all                                     scram-sha-256",
        ),
        (
            "host    all             all             127.0.0.1/32            trust",
            "host    all             all             127.0.0.1/32            scram-sha-256",
        ),
        ("hostssl all all ::1/128 trust # kept", "hostssl all all ::1/128 scram-sha-256 # kept"),
        ('# METHOD can be "trust", "reject", "md5"', None),
        ("host all all 0.0.0.0/0 scram-sha-256", None),
    ],
)
def test_trust_rules_are_found_and_switched_to_scram(line: str, converted: str | None) -> None:
    if converted is None:
        assert not _TRUST_LINE.match(line)
    else:
        assert _TRUST_LINE.sub(r"\1scram-sha-256\2", line) == converted
