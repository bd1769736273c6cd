"""The Apache Kafka tier starts whatever its cluster id begins with (issue 16)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from tenure.runtime.apache_kafka import ApacheKafkaBroker, java_and_maven_missing
from tenure.runtime.broker import broker_answers
from tests.conftest import skip_tier


def _id_starting_with_dash() -> str:
    # 0xF8 puts 62 (the URL-safe base64 digit "-") in the first six bits.
    raw = bytes([0xF8]) + uuid.uuid4().bytes[1:]
    cluster_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert cluster_id.startswith("-")
    return cluster_id


@pytest.mark.parametrize("kind", ["apache-kafka"])
def test_broker_formats_and_starts_with_a_cluster_id_starting_with_a_dash(
    kind: str, tmp_path: Path
) -> None:
    missing = java_and_maven_missing()
    if missing:
        skip_tier(kind, missing)
    cluster_id = _id_starting_with_dash()
    broker = ApacheKafkaBroker(tmp_path / "kafka", cluster_id=cluster_id)
    try:
        broker.start()
        assert broker_answers(broker.bootstrap)
        meta = (tmp_path / "kafka" / "data" / "meta.properties").read_text()
        assert f"cluster.id={cluster_id}\n" in meta
    finally:
        broker.stop()
