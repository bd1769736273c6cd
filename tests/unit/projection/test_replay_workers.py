"""How a replay shares its parts among worker processes (pure: no process is started)."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from tenure.projection.replay_workers import (
    MIN_EVENTS_PER_WORKER,
    assign,
    seq_ranges,
    worker_count,
)


@given(
    st.dictionaries(st.integers(0, 40), st.integers(1, 1_000), max_size=30),
    st.integers(1, 6),
)
def test_every_part_has_one_worker_and_the_loads_stay_within_the_largest_part(
    sizes: dict[int, int], workers: int
) -> None:
    owner = assign(sizes, workers)
    assert set(owner) == set(sizes)
    assert all(0 <= w < workers for w in owner.values())
    load = [sum(s for p, s in sizes.items() if owner[p] == w) for w in range(workers)]
    if sizes:  # largest first, each to the least loaded: no worker is a whole part behind
        assert max(load) - min(load) <= max(sizes.values())


def test_assign_balances_equal_parts() -> None:
    owner = assign({0: 10, 1: 10, 2: 10, 3: 10}, 2)
    assert sorted(owner.values()) == [0, 0, 1, 1]
    assert assign({0: 50, 1: 30, 2: 20}, 2) == {0: 0, 1: 1, 2: 1}


def test_worker_count_honours_a_given_count_and_sizes_the_default_by_cores_and_events() -> None:
    assert worker_count(10, 1) == 1
    assert worker_count(10, 3) == 3  # a given count, even for a small archive
    assert worker_count(2, 3) == 2  # never more workers than events
    assert worker_count(0, 3) == 1
    cores = len(os.sched_getaffinity(0))
    assert worker_count(MIN_EVENTS_PER_WORKER - 1, 0) == 1
    assert worker_count(MIN_EVENTS_PER_WORKER * 100, 0) == max(1, cores)


def test_seq_ranges_cover_the_span_once() -> None:
    assert seq_ranges(1, 10, 3) == [(1, 3), (4, 6), (7, 10)]
    assert seq_ranges(5, 6, 4) == [(5, 5), (6, 6)]
    assert seq_ranges(0, 0, 2) == [(0, 0)]
