"""Each benchmark runs end to end at a tiny size and prints a well-formed result line.

Not a performance test: nothing here compares times. The Kafka benchmarks start the embedded
broker (Tansu) and the embedded Postgres, a few seconds in all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bench import (
    archiver,
    audiences,
    codec,
    derive,
    ingest_http,
    replay,
    state_cache,
    storage,
    validation,
)
from bench.__main__ import BENCHMARKS, main, parse_args
from bench.events import BREAKAGES, WEIGHTS, event_mix
from bench.records import ingest_records
from bench.result import Result, percentile
from bench.servers import Servers, servers
from tenure.contract import Rejection, validate_event
from tenure.contract.validation import DEFAULT_FUTURE_TOLERANCE
from tenure.runtime.process import StartupError
from tests.conftest import skip_tier

pytestmark = pytest.mark.timeout(60)


def _check(result: Result, name: str) -> dict[str, object]:
    line: dict[str, object] = json.loads(result.to_json())
    assert line["name"] == name
    assert {"params", "measured", "baseline", "ratio", "ratio_meaning"} <= set(line)
    assert isinstance(line["ratio"], float) and line["ratio"] > 0
    return line


def test_event_mix_covers_every_type_and_breaks_about_a_tenth() -> None:
    now = datetime.now(UTC)
    events = event_mix(2000, invalid_share=0.1, now=now)
    assert {e.get("type") for e in events} >= set(WEIGHTS)
    outcomes = [
        validate_event(e, now=now, future_tolerance=DEFAULT_FUTURE_TOLERANCE) for e in events
    ]
    rejected = sum(isinstance(o, Rejection) for o in outcomes)
    assert 0.07 < rejected / len(events) < 0.13
    assert len({e["id"] for e in events}) == len(events)
    assert len(BREAKAGES) >= 5


def test_valid_mix_is_all_valid_and_becomes_records() -> None:
    records = ingest_records(event_mix(300))
    assert len(records) == 300
    assert all(r.value and r.key for r in records)


def test_percentile() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 50) == pytest.approx(50.5, abs=1)


def test_validation_benchmark_tiny() -> None:
    line = _check(validation.run(200, repeats=1), "validation")
    assert isinstance(line["measured"], dict)
    assert isinstance(line["measured"]["accelerated"], bool)


def test_codec_benchmark_tiny() -> None:
    line = _check(codec.run(people=8, repeats=1), "codec")
    measured = line["measured"]
    assert isinstance(measured, dict) and set(measured["ratios"]) == set(codec.FUNCTIONS)


def test_state_cache_benchmark_tiny() -> None:
    line = _check(state_cache.run(repeats=1, sizes=(50, 200)), "state_cache")
    measured, baseline = line["measured"], line["baseline"]
    assert isinstance(measured, dict) and isinstance(baseline, dict)
    for timings in (measured["us_per_put_by_entries_held"], baseline["us_per_put_by_entries_held"]):
        assert set(timings) == {"50", "200"} and all(t > 0 for t in timings.values())


def test_cli_rejects_unknown_benchmark() -> None:
    with pytest.raises(SystemExit):
        main(["--only", "nope"])
    assert parse_args([]).broker == "tansu"
    assert BENCHMARKS == (
        "validation",
        "ingest_http",
        "archiver",
        "projection",
        "derive",
        "audiences",
        "replay",
        "survival",
        "churn",
        "codec",
        "state_cache",
        "storage",
        "freshness",
        "audiences_load",
        "scale",
    )


def test_cli_prints_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--only", "validation", "--size", "100", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["name"] == "validation"


@pytest.fixture(scope="module")
def tansu_servers() -> Iterator[Servers]:
    with servers("tansu") as env:
        try:
            env.fresh_database()
        except (StartupError, OSError) as exc:
            skip_tier("postgres", str(exc))
        yield env


@pytest.mark.postgres
@pytest.mark.tier_embedded_only
def test_ingest_http_benchmark_tiny(tansu_servers: Servers) -> None:
    line = _check(ingest_http.run(tansu_servers, 40, batch=10, concurrency=2), "ingest_http")
    measured = line["measured"]
    assert isinstance(measured, dict) and measured["p99_request_ms"] >= measured["p50_request_ms"]


@pytest.mark.postgres
@pytest.mark.tier_embedded_only
def test_archiver_benchmark_tiny(tansu_servers: Servers) -> None:
    _check(archiver.run(tansu_servers, 60, max_poll_records=20), "archiver")


@pytest.mark.postgres
@pytest.mark.tier_embedded_only
def test_derive_benchmark_tiny(tansu_servers: Servers) -> None:
    line = _check(derive.run(tansu_servers, 150), "derive")
    measured = line["measured"]
    assert isinstance(measured, dict) and measured["rows_due"] == measured["rows_rederived"]
    params = line["params"]
    assert isinstance(params, dict) and params["persons_in_read_model"] == 150  # filled up


@pytest.mark.postgres
@pytest.mark.tier_embedded_only
def test_audiences_benchmark_tiny(tansu_servers: Servers) -> None:
    line = _check(audiences.run(tansu_servers, 150), "audiences")
    params, measured = line["params"], line["measured"]
    assert isinstance(params, dict) and params["audiences"] == 5  # the shipped ones
    assert isinstance(measured, dict) and measured["members"] > 0
    assert measured["advance_evaluated"] < params["persons"]  # never everyone


@pytest.mark.postgres
@pytest.mark.tier_embedded_only
def test_replay_benchmark_tiny(tansu_servers: Servers) -> None:
    line = _check(replay.run(tansu_servers, 400), "replay")
    measured = line["measured"]
    assert isinstance(measured, dict) and measured["peak_rss_mib"] > 0


def test_storage_benchmark_tiny(tansu_servers: Servers) -> None:
    line = _check(storage.run(tansu_servers, 300), "storage")
    measured, baseline = line["measured"], line["baseline"]
    assert isinstance(measured, dict) and isinstance(baseline, dict)
    assert measured["pending_rows_after_tidy"] == 0  # archived: no payload left in the ledger
    assert set(measured["bytes"]) == {
        "ingest_ledger",
        "ingest_pending",
        "event_archive",
        "archive_key_names",  # the keys recorded for the replay's plan (0028)
        "archive_latest",
    }
    assert set(baseline["bytes"]) == {"ingest_ledger", "event_archive"}
