"""``split_on_conflict`` and ``write_linked_apart``: the humans a derive pass's writes fail on
(another pass wrote them after the pass's snapshot) are left out, exactly those, and
everything else is written; written apart, a conflict on a linked human never splits the
humans with one id."""

from __future__ import annotations

import math
from collections.abc import Sequence

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.storage.read_model_rows import split_on_conflict, write_linked_apart
from tenure.storage.seam import PersonWrite

HUMANS = [f"h{n}" for n in range(40)]


@given(
    humans=st.lists(st.sampled_from(HUMANS), unique=True, max_size=40),
    conflicting=st.sets(st.sampled_from(HUMANS)),
    stale=st.sets(st.sampled_from(HUMANS)),
)
def test_exactly_the_conflicting_humans_are_left_out(
    humans: list[str], conflicting: set[str], stale: set[str]
) -> None:
    writes = [PersonWrite(h, (), (h,)) for h in humans]
    written: list[str] = []
    attempts = 0

    def attempt(part: Sequence[PersonWrite]) -> set[str]:
        nonlocal attempts
        attempts += 1
        if any(w.human in conflicting for w in part):
            raise psycopg.errors.SerializationFailure("concurrent update")
        written.extend(w.human for w in part)  # a savepoint that commits
        return {w.human for w in part} & stale

    result = split_on_conflict(writes, attempt)
    assert result.overtaken == set(humans) & conflicting
    assert result.stale == (set(humans) & stale) - conflicting
    assert sorted(written) == sorted(set(humans) - conflicting)  # each written once
    failing = len(result.overtaken)
    if humans:
        assert attempts <= 1 + 2 * failing * max(1, math.ceil(math.log2(len(humans))))


def test_nothing_to_write_is_no_attempt() -> None:
    def attempt(part: Sequence[PersonWrite]) -> set[str]:
        raise AssertionError("no attempt expected")

    assert split_on_conflict([], attempt) == (set(), set())


def test_other_errors_are_not_taken_for_a_conflict() -> None:
    def attempt(part: Sequence[PersonWrite]) -> set[str]:
        raise psycopg.errors.UniqueViolation("not a conflict")

    with pytest.raises(psycopg.errors.UniqueViolation):
        split_on_conflict([PersonWrite("h", (), ("h",))], attempt)


@given(
    humans=st.lists(st.sampled_from(HUMANS), unique=True, max_size=40),
    linked=st.sets(st.sampled_from(HUMANS)),
    conflicting=st.sets(st.sampled_from(HUMANS)),
    stale=st.sets(st.sampled_from(HUMANS)),
)
def test_written_apart_the_linked_humans_conflicts_split_only_the_linked(
    humans: list[str], linked: set[str], conflicting: set[str], stale: set[str]
) -> None:
    """Any human may conflict (a wrong ``linked`` costs attempts, never a row); when only
    linked ones do, the humans with one id are written in one attempt, untouched by the
    split."""
    writes = [PersonWrite(h, (), (h,), h in linked) for h in humans]
    written: list[str] = []
    parts: list[set[str]] = []

    def attempt(part: Sequence[PersonWrite]) -> set[str]:
        parts.append({w.human for w in part})
        if any(w.human in conflicting for w in part):
            raise psycopg.errors.SerializationFailure("concurrent update")
        written.extend(w.human for w in part)
        return {w.human for w in part} & stale

    result = write_linked_apart(writes, attempt)
    assert result.overtaken == set(humans) & conflicting
    assert result.stale == (set(humans) & stale) - conflicting
    assert sorted(written) == sorted(set(humans) - conflicting)  # each written once
    alone = set(humans) - linked
    assert all(part <= alone or part <= linked for part in parts)  # never mixed
    if alone and not alone & conflicting:
        assert parts.count(alone) == 1  # one attempt for every human with one id
