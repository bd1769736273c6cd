"""How a replay shares its parts among worker processes (pure: no process is started)."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from tenure.projection.replay_workers import (
    MIN_EVENTS_PER_WORKER,
    PARTS_PER_WORKER,
    assign,
    part_events,
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


@given(st.integers(1, 10**8), st.integers(2, 8), st.integers(1, 10**6))
def test_parts_are_within_the_bound_and_as_many_for_every_worker(
    events: int, workers: int, capacity: int
) -> None:
    size = part_events(events, workers, capacity)
    assert 1 <= size <= capacity
    per_worker = max(PARTS_PER_WORKER, -(-events // (workers * capacity)))
    full_parts = -(-events // size)  # parts packed full
    assert full_parts <= workers * per_worker
    if events % (workers * per_worker) == 0:
        assert full_parts == workers * per_worker  # every worker the same number


def test_two_workers_get_three_parts_each_rather_than_three_and_two() -> None:
    assert part_events(907_518, 2, 167_772) == 151_253  # 6 parts, not 5 of 167,772 and one
    assert part_events(300_929, 2, 167_772) == 75_233  # 2 each
