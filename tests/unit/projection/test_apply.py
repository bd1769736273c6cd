"""The apply stage on the memory backend of the storage seam (no I/O).

However the log is split into batches, reordered or repeated, the raw states are the raw
fold of its events, every key a batch touched is queued for derive, and the progress holds
the latest event time.
"""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain.neighbourhood import raw_fold
from tenure.projection.apply import prepare_batch, write_to
from tenure.storage.memory_store import MemoryTables, memory_store
from tenure.storage.raw_states import DEVICES, PERSONS
from tests.seam_contract import EVENTS


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), batches=st.integers(1, 20), duplicates=st.floats(0, 1))
def test_any_split_order_and_repetition_leaves_the_raw_fold(
    seed: int, batches: int, duplicates: float
) -> None:
    rng = random.Random(seed)
    log = EVENTS + rng.sample(EVENTS, int(len(EVENTS) * duplicates))
    rng.shuffle(log)
    tables = MemoryTables()
    store = memory_store(tables)
    cuts = sorted(rng.sample(range(1, len(log)), min(batches - 1, len(log) - 1)))
    touched_devices, applied = set(), 0
    for start, end in zip([0, *cuts], [*cuts, len(log)], strict=True):
        part = log[start:end]
        latest = max(e.at for e in part)
        result = write_to(store, prepare_batch(part, {("t", 0): latest}))
        applied += result.events
        touched_devices |= {k for k in prepare_batch(part, {}).devices.folds}
    want = raw_fold(EVENTS)
    assert applied == len(log)
    assert store.raw_states.read_all(DEVICES) == want.devices
    assert store.raw_states.read_all(PERSONS) == want.person_states
    assert {k for _, k in tables.marks["device"]} == touched_devices == set(want.devices)
    assert {k for _, k in tables.marks["person"]} >= set(want.person_states)
    assert store.progress.watermark(timedelta(0)) == max(e.at for e in EVENTS)
