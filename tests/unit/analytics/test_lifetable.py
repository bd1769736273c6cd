"""LifeTable: O(1) incremental add/remove equals from-scratch; never negative; serialisable."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.analytics import LifeTable, kaplan_meier, logrank_test

person = st.tuples(st.integers(0, 60), st.booleans())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(person, st.one_of(st.none(), person)), min_size=1, max_size=80))
def test_incremental_equals_from_scratch(history):
    """Each person enters with one state and maybe moves to another (e.g. censored -> churned)."""
    table = LifeTable()
    for first, _ in history:
        table.add(*first)
    for first, second in history:
        if second is not None:
            table.replace(first, second)
    final = [second if second is not None else first for first, second in history]
    scratch = LifeTable.from_durations([d for d, _ in final], [o for _, o in final])
    assert table == scratch
    assert table.to_dict() == scratch.to_dict()
    assert (table.n, table.n_events, table.n_censored) == (
        scratch.n,
        scratch.n_events,
        scratch.n_censored,
    )
    assert kaplan_meier(table) == kaplan_meier(scratch)


def test_add_remove_roundtrip_and_forgets_empty_days():
    table = LifeTable()
    table.add(3, True)
    table.add(3, False, weight=2)
    table.add(5, True)
    assert table.days() == [3, 5]
    table.remove(5, True)
    assert table.days() == [3]
    assert table.to_dict() == {3: (1, 2)}
    table.add(3, False, weight=-2)
    table.remove(3, True)
    assert table.n == 0 and table.days() == [] and table == LifeTable()


def test_never_negative_and_unchanged_on_error():
    table = LifeTable.from_durations([1, 2], [True, False])
    before = table.to_dict()
    with pytest.raises(ValueError):
        table.remove(1, False)
    with pytest.raises(ValueError):
        table.add(2, False, weight=-2)
    with pytest.raises(ValueError):
        table.remove(1, True, weight=0)
    assert table.to_dict() == before and table.n == 2


def test_replace_is_atomic():
    table = LifeTable.from_durations([4], [False])
    with pytest.raises(ValueError):
        table.replace((9, False), (10, True))  # old state was never added
    with pytest.raises(ValueError):
        table.replace((4, False), (-1, True))  # invalid new state: old one is restored
    assert table.to_dict() == {4: (0, 1)}
    table.replace((4, False), (4, True))
    assert table.to_dict() == {4: (1, 0)}
    table.replace(None, (0, False))
    table.replace((0, False), None)
    assert table.to_dict() == {4: (1, 0)}


def test_validation():
    table = LifeTable()
    with pytest.raises(ValueError):
        table.add(-1, True)
    with pytest.raises(TypeError):
        table.add(1.5, True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        table.add(True, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LifeTable.from_durations([1, 2], [True])
    with pytest.raises(ValueError):
        LifeTable.from_dict({1: (-1, 0)})


def test_serialisation_roundtrip_and_merge():
    rng = random.Random(3)
    a = LifeTable.from_durations(
        [rng.randint(0, 30) for _ in range(100)], [rng.random() < 0.6 for _ in range(100)]
    )
    b = LifeTable.from_durations([1, 1, 40], [True, False, False])
    assert LifeTable.from_dict(a.to_dict()) == a
    merged = a.merge(b)
    assert merged.n == a.n + b.n and merged.n_events == a.n_events + b.n_events
    expected = a.copy()
    for day, (ev, ce) in b.to_dict().items():
        if ev:
            expected.add(day, True, ev)
        if ce:
            expected.add(day, False, ce)
    assert merged == expected
    assert a.n == 100  # merge does not mutate
    assert next(iter(a.rows())).day == a.days()[0]


def test_logrank_after_incremental_updates_matches_scratch():
    rng = random.Random(11)
    people = [(rng.randint(0, 50), False) for _ in range(200)]
    a = LifeTable.from_durations([d for d, _ in people], [o for _, o in people])
    b = LifeTable.from_durations([rng.randint(0, 50) for _ in range(150)], [True] * 150)
    for i in range(0, 200, 3):  # a third of group A churns
        a.replace(people[i], (people[i][0], True))
        people[i] = (people[i][0], True)
    scratch = LifeTable.from_durations([d for d, _ in people], [o for _, o in people])
    assert logrank_test(a, b) == logrank_test(scratch, b)
