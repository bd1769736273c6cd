"""The conflict retry of the storage seam (pure: the errors are raised by the test)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from tenure.storage.connection import retry_conflicts


def failing(errors: list[Exception]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"

    return calls, work


def test_deadlocks_and_serialization_failures_are_run_again() -> None:
    calls, work = failing(
        [psycopg.errors.DeadlockDetected(), psycopg.errors.SerializationFailure()]
    )
    assert retry_conflicts(work, backoff_s=0) == "done"
    assert len(calls) == 3


def test_the_last_conflict_propagates_after_the_tries() -> None:
    calls, work = failing([psycopg.errors.DeadlockDetected() for _ in range(5)])
    with pytest.raises(psycopg.errors.DeadlockDetected):
        retry_conflicts(work, tries=3, backoff_s=0)
    assert len(calls) == 3


def test_other_errors_propagate_at_once() -> None:
    calls, work = failing([psycopg.errors.UniqueViolation(), psycopg.errors.DeadlockDetected()])
    with pytest.raises(psycopg.errors.UniqueViolation):
        retry_conflicts(work, backoff_s=0)
    assert len(calls) == 1
