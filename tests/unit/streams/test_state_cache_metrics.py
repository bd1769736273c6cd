"""The raw-state cache's series: read at scrape time from the projector's caches."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from streams.projector.metrics import StateCacheCollector
from tenure.domain.device import DeviceState
from tenure.storage.state_cache import RawCaches


def _samples(
    collector: StateCacheCollector,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_no_series_before_a_projector_gives_its_caches() -> None:
    assert _samples(StateCacheCollector()) == {}


def test_hits_misses_and_bytes_by_kind() -> None:
    caches = RawCaches(1 << 20)
    caches.devices.put({"d1": 7}, {"d1": DeviceState("d1")}, {"d1": 100})
    assert caches.devices.fresh("d1", 7) is not None  # a hit
    assert caches.devices.fresh("d1", 8) is None  # the row changed: the caller decodes
    caches.devices.count_decoded(3)
    collector = StateCacheCollector()
    collector.caches = caches
    samples = _samples(collector)
    reads = "tenure_projector_state_cache_reads_total"
    assert samples[(reads, (("kind", "device"), ("result", "hit")))] == 1
    assert samples[(reads, (("kind", "device"), ("result", "miss")))] == 3
    assert samples[(reads, (("kind", "person"), ("result", "hit")))] == 0
    used = samples[("tenure_projector_state_cache_bytes", (("kind", "device"),))]
    assert used == caches.devices.used_bytes > 0
    assert samples[("tenure_projector_state_cache_bytes", (("kind", "person"),))] == 0
    limit = "tenure_projector_state_cache_limit_bytes"
    assert samples[(limit, (("kind", "device"),))] == caches.devices.limit_bytes
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'tenure_projector_state_cache_reads_total{kind="device",result="miss"} 3.0' in text
