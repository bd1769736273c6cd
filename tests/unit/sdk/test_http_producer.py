"""The HTTP producer SDK's pure parts, and that it imports no server dependency."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tenure.sdk import Accepted, Duplicate, Rejected, RetryPolicy, Undelivered
from tenure.sdk.http_producer import parse_retry_after, with_id

SERVER_MODULES = (
    "fastapi", "starlette", "uvicorn", "psycopg", "psycopg_pool", "kafka", "aiokafka", "faust",
    "services", "streams", "jsonschema", "jsonschema_rs", "orjson", "prometheus_client",
)  # fmt: skip


def test_the_sdk_imports_without_any_server_dependency() -> None:
    script = (
        "import sys\n"
        f"for name in {SERVER_MODULES!r}:\n"
        "    sys.modules[name] = None  # any import of it raises ImportError\n"
        "from tenure.sdk import TenureHttpProducer, AsyncTenureHttpProducer, Accepted\n"
        "producer = TenureHttpProducer('http://127.0.0.1:9', 'token')\n"
        "producer.close()\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_kafka_producer_is_still_importable_from_the_package() -> None:
    from tenure.sdk import TenureProducer
    from tenure.sdk.producer import TenureProducer as Direct

    assert TenureProducer is Direct


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 30 ") == 30.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=5), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 5.0
    earlier = format_datetime(now - timedelta(seconds=5), usegmt=True)
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0


def test_retry_after_is_honoured_up_to_the_cap_and_backoff_grows_bounded() -> None:
    policy = RetryPolicy(initial_backoff_s=0.2, max_backoff_s=2.0)
    assert policy.wait(1, "1") == 1.0
    assert policy.wait(1, "120") == 2.0
    for attempt, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0), (30, 2.0)]:
        waits = [policy.wait(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), attempt


def test_an_event_without_id_gets_one_and_an_event_with_one_keeps_it() -> None:
    given = with_id({"id": "e-1", "source": "s"})
    assert given == {"id": "e-1", "source": "s"}
    original = {"source": "s"}
    made = with_id(original)
    assert made["id"] and "id" not in original
    assert with_id(made) == made


def test_delivered_means_accepted_or_duplicate() -> None:
    assert Accepted("e", "s").delivered and Duplicate("e", "s").delivered
    assert not Rejected("e", "s", "data", "why").delivered
    assert not Undelivered("e", "s", "why", 503).delivered
