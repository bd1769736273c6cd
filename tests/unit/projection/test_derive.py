"""The apply and derive stages on the memory backend of the storage seam (no I/O).

Batches of the log, in any order, with duplicates, split anywhere, applied and derived in
any interleaving with any chunk size, leave the ``persons`` and ``devices`` rows the pure
fold of the log gives (``tenure.domain.world``), the raw states equal to the raw fold, and
nothing queued. The memory backend passes the seam's contract suite as Postgres does
(``tests/seam_contract.py``).
"""

from __future__ import annotations

import random
from datetime import timedelta
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain.device_view import device_view_of
from tenure.domain.events import DomainEvent, parse_event
from tenure.domain.neighbourhood import raw_fold
from tenure.domain.schedule import next_change_at
from tenure.domain.view import DEFAULT_CONFIG
from tenure.domain.world import fold, views
from tenure.projection.apply import prepare_batch, write_to
from tenure.projection.derive import DeriveResult, derive_chunk
from tenure.projection.replay import aliases_by_person
from tenure.simulation import SimulationParameters, simulate
from tenure.storage.memory_store import MemoryTables, memory_store
from tenure.storage.raw_states import DEVICES, PERSONS
from tenure.storage.read_models import (
    DEVICE_COLUMNS,
    STORED_PERSON_COLUMNS,
    device_row,
    stored_person_row,
)
from tenure.storage.seam import ProjectionStore
from tests.factories import scenario
from tests.seam_contract import END

LATENESS = timedelta(hours=6)
PARTITION = ("tenure.device-events.v1", 0)


@cache
def _events() -> tuple[DomainEvent, ...]:
    """A scenario with every event type (links, erasure, consent) and a simulated crowd."""
    crowd = simulate(SimulationParameters(people=15, identity_link_rate=0.3)).deliveries
    return (
        *(parse_event(e) for e in scenario(11, 10, source="urn:test:derive", end=END)),
        *(parse_event(d.envelope) for d in crowd),
    )


def _expected(events: list[DomainEvent]) -> tuple[dict[str, tuple[Any, ...]], dict[str, Any]]:
    """The stored rows the pure fold of ``events`` gives at the watermark, by key."""
    world = fold(events)
    as_of = max(e.at for e in events) - LATENESS
    aliases = aliases_by_person(world)
    persons = {
        p: stored_person_row(
            v, aliases.get(p, []), next_change_at(world.persons[p], v, DEFAULT_CONFIG)
        )
        for p, v in views(world, as_of).items()
    }
    devices = {d: device_row(device_view_of(s)) for d, s in world.devices.items()}
    return persons, devices


def _stored(tables: MemoryTables) -> tuple[dict[str, tuple[Any, ...]], dict[str, Any]]:
    persons = {p: tuple(r[c] for c in STORED_PERSON_COLUMNS) for p, r in tables.persons.items()}
    devices = {d: tuple(r[c] for c in DEVICE_COLUMNS) for d, r in tables.devices.items()}
    return persons, devices


def _drain(store: ProjectionStore, limit: int) -> None:
    for _ in range(10_000):
        result = derive_chunk(store, allowed_lateness=LATENESS, limit=limit)
        if result == DeriveResult(0, 0, 0, 0):
            return
    raise AssertionError("the derive queue never emptied")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    batches=st.integers(1, 30),
    duplicates=st.floats(0, 0.5),
    derive_every=st.integers(1, 8),
    limit=st.integers(1, 60),
)
def test_batches_in_any_order_applied_and_derived_equal_the_fold(
    seed: int, batches: int, duplicates: float, derive_every: int, limit: int
) -> None:
    events = list(_events())
    rng = random.Random(seed)
    log = events + rng.sample(events, int(len(events) * duplicates))
    rng.shuffle(log)
    tables = MemoryTables()
    store = memory_store(tables)
    # The watermark first, so every pass derives as of the same instant.
    store.progress.record({PARTITION: max(e.at for e in events)}, {})
    cuts = sorted(rng.sample(range(1, len(log)), min(batches - 1, len(log) - 1)))
    for n, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(log)], strict=True)):
        write_to(store, prepare_batch(log[start:end], {}))
        if n % derive_every == 0:
            derive_chunk(store, allowed_lateness=LATENESS, limit=limit)
    _drain(store, limit)

    want_persons, want_devices = _expected(events)
    got_persons, got_devices = _stored(tables)
    assert got_devices == want_devices
    assert got_persons.keys() == want_persons.keys()
    assert got_persons == want_persons
    raw = raw_fold(events)
    assert store.raw_states.read_all(DEVICES) == raw.devices
    assert store.raw_states.read_all(PERSONS) == raw.person_states
    assert tables.deltas.get(DEVICES.deltas, []) == []  # derive compacted every key
    assert tables.marks == {"person": [], "device": []}


def test_a_pass_without_a_watermark_derives_nothing() -> None:
    store = memory_store()
    write_to(store, prepare_batch(list(_events())[:20], {}))
    assert derive_chunk(store, allowed_lateness=LATENESS) is None


def test_a_pass_reports_how_long_each_view_it_wrote_had_waited() -> None:
    """One wait per device derived and per claimed person id whose person was written;
    nothing for an empty pass."""
    events = [e for e in _events() if e.at <= END]
    tables = MemoryTables()
    store = memory_store(tables)
    store.progress.record({PARTITION: max(e.at for e in events)}, {})
    write_to(store, prepare_batch(events, {}))
    queued = len({k for _, k in tables.marks["person"]})
    result = derive_chunk(store, allowed_lateness=LATENESS, limit=10_000)
    assert result is not None
    kinds = [kind for kind, _ in result.waited_s]
    assert kinds.count("device") == result.devices > 0
    assert result.persons <= kinds.count("person") <= queued
    assert all(0 <= seconds < 60 for _, seconds in result.waited_s)
    assert derive_chunk(store, allowed_lateness=LATENESS, limit=10_000) == DeriveResult(0, 0, 0, 0)
