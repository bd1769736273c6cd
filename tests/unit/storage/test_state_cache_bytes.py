"""The projector's caches are bounded in bytes, by an honest estimate of what they hold."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import pytest

from tenure.domain.device import DeviceState
from tenure.domain.events import parse_event
from tenure.domain.neighbourhood import RawWorld, group_by_key, raw_fold
from tenure.domain.person import PersonState
from tenure.domain.state_codec import encode_device_delta, encode_device_state, encode_person_state
from tenure.simulation import SimulationParameters, simulate
from tenure.storage.raw_states import DEVICES, PERSONS, RawTable
from tenure.storage.state_cache import RawCaches, StateCache, entry_bytes


@cache
def _population() -> tuple[RawWorld, RawWorld]:
    """Raw states of a simulated population: full states, and one small batch's deltas."""
    events = [parse_event(d.envelope) for d in simulate(SimulationParameters(people=60)).deliveries]
    batch = group_by_key(events[:400])  # routed as the apply stage routes a batch
    deltas = RawWorld(
        devices={k: DEVICES.fold(k, v) for k, v in batch.devices.items()},
        person_states={k: PERSONS.fold(k, v) for k, v in batch.persons.items()},
    )
    return raw_fold(events), deltas


def _documents(states: Mapping[str, Any], encode: Callable[[Any], bytes]) -> dict[str, str]:
    return {key: encode(state).decode() for key, state in states.items()}


def _measured(kind: RawTable[Any], documents: list[tuple[str, str]]) -> int:
    """Bytes allocated by decoding ``documents`` and holding them as cache entries (keys
    included), as a cache holds many states at once."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        entries = {"".join(key): (n, kind.decode(doc)) for n, (key, doc) in enumerate(documents)}
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(entries) == len(documents)
    return after - before


@pytest.mark.parametrize(
    ("which", "kind", "encode"),
    [
        ("devices", DEVICES, encode_device_state),
        ("device deltas", DEVICES, encode_device_delta),
        ("persons", PERSONS, encode_person_state),
        ("person deltas", PERSONS, encode_person_state),
    ],
)
def test_the_size_estimate_covers_what_a_decoded_state_takes(
    which: str, kind: RawTable[Any], encode: Callable[[Any], bytes]
) -> None:
    full, deltas = _population()
    world = deltas if "deltas" in which else full
    states = world.devices if kind is DEVICES else world.person_states
    per_char = RawCaches().devices.per_char if kind is DEVICES else RawCaches().persons.per_char
    documents = list(_documents(states, encode).items())[:60]
    assert len(documents) >= 20
    # most states carry facts (deltas folded from states instead of events came out empty)
    empty = DeviceState if kind is DEVICES else PersonState
    bare = sum(1 for key, doc in documents if len(doc) <= len(encode(empty(key))))
    assert bare < len(documents) / 2, (which, bare)
    estimated = sum(entry_bytes(k, len(d), per_char) for k, d in documents)
    measured = _measured(kind, documents)
    # never under the real cost (the bound must hold), and not wildly over (the cache is used)
    assert measured <= estimated <= 2.5 * measured, (which, measured, estimated)


def _device_entries(n: int) -> list[tuple[str, DeviceState, int]]:
    full, _ = _population()
    states = list(full.devices.values())
    out = []
    for i in range(n):
        state = states[i % len(states)]
        out.append((f"d-{i}", state, len(encode_device_state(state))))
    return out


def test_filling_past_the_bound_keeps_the_bytes_within_it_and_drops_the_oldest() -> None:
    cache_ = StateCache[DeviceState](limit_bytes=400_000)
    entries = _device_entries(400)
    for n, (key, state, chars) in enumerate(entries):
        cache_.put({key: n}, {key: state}, {key: chars})
        assert cache_.used_bytes <= cache_.limit_bytes
    assert cache_.evicted > 0
    held = set(cache_.entries)
    assert held and len(held) < len(entries)
    # what is held is the most recently written suffix
    keys = [k for k, _, _ in entries]
    assert held == set(keys[len(keys) - len(held) :])
    assert cache_.used_bytes == sum(
        entry_bytes(k, c, cache_.per_char) for k, _, c in entries if k in held
    )


def test_a_state_used_again_is_kept_over_older_ones() -> None:
    cache_ = StateCache[DeviceState](limit_bytes=400_000)
    entries = _device_entries(400)
    first_key, first_state, first_chars = entries[0]
    cache_.put({first_key: 7}, {first_key: first_state}, {first_key: first_chars})
    for n, (key, state, chars) in enumerate(entries[1:], start=1):
        assert cache_.fresh(first_key, 7) is first_state  # in use all along
        cache_.put({key: n}, {key: state}, {key: chars})
    assert first_key in cache_.entries
    assert cache_.evicted > 0 and entries[1][0] not in cache_.entries


def test_an_evicted_or_outdated_state_is_a_miss_never_a_wrong_state() -> None:
    cache_ = StateCache[DeviceState](limit_bytes=100_000)
    entries = _device_entries(100)
    for n, (key, state, chars) in enumerate(entries):
        cache_.put({key: n}, {key: state}, {key: chars})
    for n, (key, state, _) in enumerate(entries):
        found = cache_.fresh(key, n)
        assert found is None or found is state
        assert cache_.fresh(key, n + 1000) is None  # the row moved on
    assert cache_.fresh(entries[0][0], 0) is None  # evicted long ago


def test_delta_documents_are_bounded_too() -> None:
    _, deltas = _population()
    cache_ = StateCache[PersonState](limit_bytes=80_000, per_char=2.5)
    documents = {encode_person_state(s).decode() + " " * i: s for i, s in
                 enumerate(list(deltas.person_states.values()) * 10)}  # fmt: skip
    cache_.remember_deltas(documents)
    assert 0 < cache_.used_bytes <= cache_.limit_bytes
    assert cache_.evicted > 0 and len(cache_.deltas) < len(documents)
    assert list(cache_.deltas) == list(documents)[-len(cache_.deltas) :]


def test_raw_caches_split_their_bytes() -> None:
    caches = RawCaches(10_000_000)
    assert caches.devices.limit_bytes + caches.persons.limit_bytes == 10_000_000
    assert caches.used_bytes == 0
