"""Postgres: raw states as compacted rows plus a log of deltas (``tenure.storage.raw_states``).

A raw state must read the same (the pure per-key fold of its events) however the events
were split into batches, whether or not it was compacted, and whatever concurrent
appends and compactions did meanwhile.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tenure.domain.device import DeviceState
from tenure.domain.events import DomainEvent, parse_event
from tenure.domain.neighbourhood import raw_fold
from tenure.projection.apply import apply_events
from tenure.storage.raw_states import DEVICES, PERSONS, compact, read_all, read_cached
from tenure.storage.state_cache import RawCaches, StateCache
from tests.factories import scenario

Connection = psycopg.Connection[Any]

END = datetime(2026, 6, 1, tzinfo=UTC)


def _events(seed: int = 3) -> list[DomainEvent]:
    return [parse_event(e) for e in scenario(seed, 30, source="urn:test:raw-log", end=END)]


def _apply_in_batches(conn: psycopg.Connection[Any], events: list[DomainEvent], seed: int) -> None:
    rng = random.Random(seed)
    shuffled = events + rng.sample(events, len(events) // 5)  # duplicates too
    rng.shuffle(shuffled)
    at = 0
    while at < len(shuffled):
        size = rng.randint(1, 40)
        with conn.transaction():
            apply_events(conn, shuffled[at : at + size], {})
        at += size


def _stored(conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return read_all(conn, DEVICES), read_all(conn, PERSONS)


def _compact_everything(conn: psycopg.Connection[Any], caches: RawCaches) -> None:
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for kind, cache in ((DEVICES, caches.devices), (PERSONS, caches.persons)):
            keys = [
                str(r[0]) for r in conn.execute(f"SELECT DISTINCT {kind.key} FROM {kind.deltas}")
            ]
            compact(conn, kind, cache, read_cached(conn, kind, cache, keys).states)  # type: ignore[arg-type]


def test_any_batching_reads_as_the_pure_fold_before_and_after_compaction(database_url: str) -> None:
    events = _events()
    want = raw_fold(events)
    assert len(want.devices) > 5 and len(want.person_states) > 5
    with psycopg.connect(database_url, autocommit=True) as conn:
        _apply_in_batches(conn, events, seed=1)
        deltas = conn.execute("SELECT count(*) FROM raw_device_deltas").fetchone()
        assert deltas is not None and deltas[0] > len(want.devices)  # several per device
        assert _stored(conn) == (dict(want.devices), dict(want.person_states))

        caches = RawCaches()
        _compact_everything(conn, caches)
        left = conn.execute(
            "SELECT (SELECT count(*) FROM raw_device_deltas),"
            " (SELECT count(*) FROM raw_person_deltas)"
        ).fetchone()
        assert left == (0, 0)
        assert _stored(conn) == (dict(want.devices), dict(want.person_states))

        _apply_in_batches(conn, events, seed=2)  # everything again, on top of compacted rows
        assert _stored(conn) == (dict(want.devices), dict(want.person_states))
        keys = sorted(want.devices)
        assert read_cached(conn, DEVICES, caches.devices, keys).states == dict(want.devices)
        assert caches.devices.hits > 0  # compacted states served from the cache
        cold = RawCaches()
        assert read_cached(conn, DEVICES, cold.devices, keys).states == dict(want.devices)
        assert (cold.devices.hits, cold.devices.misses) == (0, len(keys))  # each decoded once
        assert read_cached(conn, DEVICES, cold.devices, keys).states == dict(want.devices)
        assert (cold.devices.hits, cold.devices.misses) == (len(keys), len(keys))


def _device_used(device_id: str, at: datetime, n: int) -> DomainEvent:
    return parse_event(
        {"specversion": "1.0", "id": f"use-{device_id}-{n}", "source": "urn:test:raw-log",
         "type": "device.used", "time": at.isoformat().replace("+00:00", "Z"),
         "data": {"device_id": device_id, "duration_s": 60}}
    )  # fmt: skip


@pytest.fixture
def two_connections(database_url: str) -> Iterator[tuple[Connection, Connection]]:
    """Two autocommit sessions on the database, interleaved by hand in a test."""
    with (
        psycopg.connect(database_url, autocommit=True) as first,
        psycopg.connect(database_url, autocommit=True) as other,
    ):
        yield first, other


def _used_once(connections: tuple[Connection, Connection], device_id: str) -> None:
    """One committed use of ``device_id`` (day END) before the interleaving starts."""
    with connections[0].transaction():
        apply_events(connections[0], [_device_used(device_id, END, 1)], {})


def test_a_delta_appended_during_a_compaction_is_kept(
    two_connections: tuple[Connection, Connection],
) -> None:
    first, other = two_connections
    _used_once(two_connections, "d-1")
    caches = RawCaches()
    with first.transaction():
        first.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        states = read_cached(first, DEVICES, caches.devices, ["d-1"]).states  # snapshot
        with other.transaction():  # appended and committed after the snapshot
            apply_events(other, [_device_used("d-1", END + timedelta(days=1), 2)], {})
        compact(first, DEVICES, caches.devices, states)
    got = read_all(first, DEVICES)["d-1"]
    assert len(got.uses) == 2  # both days: the late delta was neither deleted nor lost
    rows = first.execute("SELECT count(*) FROM raw_device_deltas").fetchone()
    assert rows == (1,)


def test_two_compactions_of_one_key_cannot_both_commit(
    two_connections: tuple[Connection, Connection],
) -> None:
    first, other = two_connections
    _used_once(two_connections, "d-2")
    with pytest.raises(psycopg.errors.SerializationFailure):
        with first.transaction():
            first.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            mine = read_cached(first, DEVICES, RawCaches().devices, ["d-2"]).states
            with other.transaction():
                other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                apply_events(other, [_device_used("d-2", END + timedelta(days=2), 2)], {})
            with other.transaction():
                other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                theirs = read_cached(other, DEVICES, RawCaches().devices, ["d-2"]).states
                compact(other, DEVICES, RawCaches().devices, theirs)
            compact(first, DEVICES, RawCaches().devices, mine)  # would drop day 2
    assert len(read_all(first, DEVICES)["d-2"].uses) == 2


def test_keys_with_copy_special_characters_round_trip(database_url: str) -> None:
    odd = ["tab\there", "new\nline", "back\\slash", "cr\rhere", 'quote"d', "ünïcode"]
    events = [_device_used(d, END, n) for n, d in enumerate(odd)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            apply_events(conn, events, {})
        assert read_all(conn, DEVICES) == dict(raw_fold(events).devices)


class _ClearedMeanwhile(StateCache[DeviceState]):
    """A cache another thread clears (partitions revoked) while a read is in flight."""

    def fresh(self, key: str, xmin: int) -> DeviceState | None:
        self.clear()
        return None


def test_states_dropped_from_the_cache_during_a_read_are_read_again(database_url: str) -> None:
    events = _events(seed=5)
    want = dict(raw_fold(events).devices)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _apply_in_batches(conn, events, seed=3)
        caches = RawCaches()
        _compact_everything(conn, caches)
        cleared = _ClearedMeanwhile(entries=dict(caches.devices.entries))
        assert read_cached(conn, DEVICES, cleared, sorted(want)).states == want


def test_a_cache_far_smaller_than_the_states_reads_the_same(database_url: str) -> None:
    """A byte bound that holds a fraction of the states evicts, stays within the bound, and
    every read still equals the pure fold."""
    events = _events(seed=7)
    want = raw_fold(events)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _apply_in_batches(conn, events, seed=4)
        caches = RawCaches(limit_bytes=60_000)
        _compact_everything(conn, caches)
        for _ in range(2):  # the second round reads through a cache full of the first
            devices = read_cached(conn, DEVICES, caches.devices, sorted(want.devices)).states
            persons = read_cached(conn, PERSONS, caches.persons, sorted(want.person_states))
            assert devices == dict(want.devices)
            assert persons.states == dict(want.person_states)
        for cache in (caches.devices, caches.persons):
            assert 0 < cache.used_bytes <= cache.limit_bytes
        assert caches.devices.evicted > 0 and caches.persons.evicted > 0
        assert caches.devices.hits > 0  # it is still used
