"""The ``freshness`` and ``scale`` benchmarks run end to end at tiny sizes; their counts add up.

Not performance tests: nothing here compares times. ``freshness`` starts the real
``tenure up`` (embedded Tansu + Postgres); ``scale`` the run's embedded servers and Tenure's
workers. A few tens of seconds each.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from bench import audiences_load, freshness, scale
from bench.__main__ import BENCHMARKS, ONLY_WHEN_NAMED, WITHOUT_SERVERS, _names
from bench.follow_backlog import FOLLOW_PARTS
from bench.probes import ORDERS, POLL_BACKOFF_AFTER_S, Probe, Prober, probe_event, probe_person_id
from bench.servers import servers
from tenure.contract import Rejection, validate_event
from tenure.contract.validation import DEFAULT_FUTURE_TOLERANCE
from tenure.runtime.process import StartupError
from tests.conftest import skip_tier


def test_probe_ids_sort_first_last_and_among_the_simulators_ids() -> None:
    load_ids = ["sim-0000000000000000", "sim-ffffffffffffffff"]
    for _ in range(20):
        first, last = probe_person_id("first"), probe_person_id("last")
        middle = probe_person_id("random")
        assert first < min(load_ids) and last > max(load_ids)
        assert middle.startswith("sim-") and len(middle) == len(load_ids[0])
    assert len({probe_person_id("random") for _ in range(50)}) == 50
    with pytest.raises(ValueError):
        probe_person_id("middle")


def test_a_probe_event_is_a_valid_activation_of_its_person() -> None:
    now = datetime.now(UTC)
    event = probe_event("000-fresh-x", now)
    checked = validate_event(event, now=now, future_tolerance=DEFAULT_FUTURE_TOLERANCE)
    assert not isinstance(checked, Rejection)
    assert event["data"]["person_id"] == "000-fresh-x"


def test_visibility_statistics_and_targets() -> None:
    probes = [Probe("first", f"p{i}", "load", 0.0, 0.1, 0.5 + i / 100) for i in range(100)]
    probes += [Probe("last", "slow", "load", 0.0, 0.1, 6.0), Probe("last", "x", "load", 0, 0.1)]
    probes += [Probe("random", "r", "load", 10.0, 10.1, 11.0)]
    stats = freshness.visibility(probes)
    assert stats["first"]["probes"] == stats["first"]["visible"] == 100
    assert stats["first"]["max_s"] == pytest.approx(1.49)
    assert stats["last"] == {**stats["last"], "probes": 2, "visible": 1, "not_visible": 1}
    assert stats["random"]["p50_s"] == pytest.approx(1.0)
    met = freshness.targets(stats)
    assert met["first"] == {"p99_below_2s": True, "max_below_5s": True}
    assert met["last"] == {"p99_below_2s": False, "max_below_5s": False}  # one never seen
    assert all(met["random"].values())


def test_a_probes_resolution_is_from_its_last_unanswered_get_to_its_first_200() -> None:
    probe = Probe("first", "p", "load", 10.0, 10.1, visible_at=11.9, unseen_at=11.75)
    assert probe.visibility_s == pytest.approx(1.9)
    assert probe.resolution_s == pytest.approx(0.15)
    seen_at_once = Probe("first", "q", "load", 10.0, 10.1, visible_at=10.3)
    assert seen_at_once.resolution_s is None  # visible at the first GET after the POST
    assert Probe("first", "r", "load", 10.0, unseen_at=10.2).resolution_s is None
    stats = freshness.visibility([probe, seen_at_once])
    assert stats["first"]["resolution_p99_s"] == pytest.approx(0.15)
    assert stats["first"]["visible_at_first_get"] == 1


def test_a_probe_is_polled_at_the_interval_up_to_the_max_target_then_backs_off() -> None:
    prober = Prober.__new__(Prober)  # the schedule only; no connections
    prober.poll_interval_s = 0.1
    assert {prober.poll_delay_s(age) for age in (0.0, 1.0, 1.99, 4.99)} == {0.1}
    assert POLL_BACKOFF_AFTER_S == freshness.MAX_TARGET_S
    assert prober.poll_delay_s(POLL_BACKOFF_AFTER_S) == pytest.approx(0.5)
    assert prober.poll_delay_s(60.0) == pytest.approx(6.0)


def test_the_backlog_sampler_stops_whether_or_not_it_started() -> None:
    never_started = freshness.BacklogSampler([], None, every_s=0.01)
    never_started.stop()  # a run that failed before sampling: nothing to wait for
    sampler = freshness.BacklogSampler([], None, every_s=0.01)
    sampler.start()
    deadline = time.monotonic() + 10
    while not sampler.samples and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert not sampler._thread.is_alive()
    taken = len(sampler.samples)
    time.sleep(0.05)
    assert taken >= 1 and len(sampler.samples) == taken


def test_scale_is_run_only_when_named() -> None:
    assert {"freshness", "scale"} <= set(BENCHMARKS)
    assert "scale" in ONLY_WHEN_NAMED and "scale" not in _names(None)
    assert _names(["scale"]) == ["scale"]
    assert "freshness" in WITHOUT_SERVERS
    assert "audiences_load" in WITHOUT_SERVERS and "audiences_load" not in _names(None)


@pytest.mark.timeout(300)
@pytest.mark.postgres
@pytest.mark.tier_embedded_only
@pytest.mark.soak  # ~45 s: a whole `tenure up` under load; `make test-faults`
def test_freshness_bench_tiny() -> None:
    try:
        result = freshness.run(5, probes=3, idle_probes=1, sample_s=1.0)
    except (StartupError, OSError) as exc:
        skip_tier("postgres", str(exc))
    line: dict[str, Any] = json.loads(result.to_json())
    assert line["name"] == "freshness" and isinstance(line["ratio"], float)
    measured, baseline = line["measured"], line["baseline"]
    load = measured["load"]
    assert load["accepted"] > 0 and load["requests"] > 0
    assert load["offered"] == (
        load["accepted"] + load["duplicates"] + load["rejected"] + load["refused"]
    )
    assert sum(load["http_statuses"].values()) == load["requests"]
    for order in ORDERS:
        for stats, rounds in (
            (measured["visibility"][order], 3),
            (baseline["visibility"][order], 1),
        ):
            assert stats["probes"] == rounds == stats["visible"] + stats["not_visible"]
        assert set(measured["targets"][order]) == {"p99_below_2s", "max_below_5s"}
    assert isinstance(measured["all_targets_met"], bool)
    rows = measured["backlog_over_time"]
    assert rows and {"t_s", "person_backlog", "device_backlog", "applied_records"} <= set(rows[0])
    assert rows[-1]["accepted_events"] == load["accepted"]
    assert line["notes"]["query_polls"] >= 3 * (3 + 1)  # every probe seen by one GET at least
    assert line["notes"]["query_get_s"]["p50"] > 0
    cpu = measured["cpu_seconds_during_load"]
    assert cpu["bench-generator"] > 0  # the load's generator process is counted
    lag = measured["view_lag_queued_to_written"]
    assert lag["person"]["views"] >= 3 * 3  # the probes' persons, besides the load's
    assert 0 <= lag["person"]["p50_s"] <= lag["person"]["p99_s"]


@pytest.mark.timeout(300)
@pytest.mark.postgres
@pytest.mark.tier_embedded_only
@pytest.mark.soak  # ~80 s: three consumer-group runs; `make test-faults`
def test_scale_bench_tiny() -> None:
    with servers("tansu") as env:
        try:
            result = scale.run(env, persons=150, events=1500, sample_s=1.0, requests=20)
        except (StartupError, OSError) as exc:
            skip_tier("tansu", str(exc))
    line: dict[str, Any] = json.loads(result.to_json())
    assert line["name"] == "scale"
    m = line["measured"]
    produced = m["population"]["events"]
    assert produced >= 1500 and m["population"]["persons_simulated"] >= 150
    for run, workers in ((m["one_worker"], 1), (m["two_workers"], 2)):
        assert run["workers"] == workers
        assert run["records_done"] == run["committed_offsets"] == produced
        assert run["persons_rows"] > 0
        assert all(len(row["rss_mib"]) == workers for row in run["over_time"])
        assert all(tuple(row["follow_backlog_gauge"]) == FOLLOW_PARTS for row in run["over_time"])
        assert run["max_rss_mib"] > 0
        reads = run["state_cache_reads"]  # compacted-state reads, scraped from the workers
        assert set(reads) == {f"{k}_{r}" for k in ("device", "person") for r in ("hit", "miss")}
        assert all(n >= 0 for n in reads.values())
        shares = run["state_cache_hit_share"].values()
        assert all(s is None or 0 <= s <= 1 for s in shares)
        until = {d: run[f"seconds_until_every_person_{d}"] for d in ("derived", "followed")}
        assert until["followed"] >= until["derived"]
        assert tuple(run["follow_backlog_when_derived"]) == FOLLOW_PARTS
    assert m["one_worker"]["persons_rows"] == m["two_workers"]["persons_rows"]
    assert sum(m["archiver"]["outcomes"].values()) == produced
    assert m["postgres"]["bytes_per_event"] > 0
    assert m["postgres"]["archive_database_largest_tables_bytes"]["event_archive"] > 0
    assert m["postgres"]["projection_database_largest_tables_bytes"]["persons"] > 0
    assert m["queries"]["person"]["requests"] == m["queries"]["survival"]["requests"] > 0
    assert line["ratio"] >= 0


@pytest.mark.timeout(600)
@pytest.mark.postgres
@pytest.mark.tier_embedded_only
@pytest.mark.soak  # ~2 min: two `tenure up` under load; `make test-faults`
def test_audiences_load_bench_tiny_compares_the_stage_off_and_on() -> None:
    try:
        result = audiences_load.run(8, probes=2, idle_probes=1)
    except (StartupError, OSError) as exc:
        skip_tier("postgres", str(exc))
    line: dict[str, Any] = json.loads(result.to_json())
    assert line["name"] == "audiences_load" and line["ratio"] > 0
    off, on = line["baseline"]["runs"], line["measured"]["runs"]
    assert len(off) == len(on) == 1
    assert off[0]["accepted_events"] > 0 and on[0]["accepted_events"] > 0
    assert off[0]["projector_cpu_ms_per_event"] > 0 and on[0]["projector_cpu_ms_per_event"] > 0
    # Off means off: no membership change; on, the load's people enter the audiences.
    assert off[0]["audience_changes"] == 0 < on[0]["audience_changes"]
    assert off[0]["not_visible"] == on[0]["not_visible"] == 0
