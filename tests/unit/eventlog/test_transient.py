"""The one waiting policy of the workers (no I/O): transient failures are waited out with
the worker not ready meanwhile, anything else propagates at once."""

from __future__ import annotations

import asyncio
import itertools

import psycopg
import pytest
from prometheus_client import REGISTRY

from tenure.eventlog.publisher import PublishFailed
from tenure.eventlog.transient import ready, until_transient_passes
from tenure.runtime.database import Backoff
from tenure.runtime.liveness import Heartbeat

_names = itertools.count()


def _readiness(worker: str) -> float | None:
    return REGISTRY.get_sample_value("tenure_worker_ready", {"worker": worker})


def _quick() -> Backoff:
    return Backoff(first_s=0.001, cap_s=0.002)


class Failing:
    """Fails with each of ``errors`` in turn, then returns ``"done"``; records the worker's
    readiness at each call."""

    def __init__(self, worker: str, *errors: BaseException) -> None:
        self.worker = worker
        self.errors = list(errors)
        self.calls = 0
        self.readiness: list[float | None] = []

    def __call__(self) -> str:
        self.calls += 1
        self.readiness.append(_readiness(self.worker))
        if self.errors:
            raise self.errors.pop(0)
        return "done"


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("the database went away"),
        psycopg.InterfaceError("the connection is closed"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        PublishFailed("the broker did not acknowledge"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_transient_failure_is_waited_out_not_ready_meanwhile(error: BaseException) -> None:
    worker = f"w{next(_names)}"
    ready(worker)
    work = Failing(worker, error, error)
    ticks = itertools.count()
    heartbeat = Heartbeat(clock=lambda: float(next(ticks)))
    before = heartbeat.age_s()

    result = asyncio.run(
        until_transient_passes(
            "writing", work, worker=worker, heartbeat=heartbeat, backoff=_quick()
        )
    )

    assert result == "done" and work.calls == 3
    assert work.readiness == [1.0, 0.0, 0.0]  # not ready from the first failure on
    assert _readiness(worker) == 1.0
    assert heartbeat.age_s() < before + 10  # it beat while waiting


def test_any_other_failure_propagates_at_once_and_readiness_is_untouched() -> None:
    worker = f"w{next(_names)}"
    ready(worker)
    work = Failing(worker, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(until_transient_passes("writing", work, worker=worker, backoff=_quick()))
    assert work.calls == 1 and _readiness(worker) == 1.0


def test_the_worker_is_ready_only_once_every_waiting_part_has_succeeded() -> None:
    worker = f"w{next(_names)}"
    ready(worker)
    lost = psycopg.OperationalError("the database went away")

    async def both() -> tuple[list[float | None], float | None]:
        slow = Failing(worker, *([lost] * 30))  # the hot path, say: still waiting ...
        quick = Failing(worker, lost)  # ... while a task's second try succeeds
        waiting_slow = asyncio.ensure_future(
            until_transient_passes("writing", slow, worker=worker, backoff=_quick())
        )
        await until_transient_passes("deriving", quick, worker=worker, backoff=_quick())
        between = _readiness(worker)
        await waiting_slow
        return slow.readiness, between

    readiness, between = asyncio.run(both())
    assert between == 0.0  # the quick part's success does not hide the slow part's wait
    assert readiness[-1] == 0.0 and _readiness(worker) == 1.0


def test_a_stopping_worker_does_not_wait() -> None:
    worker = f"w{next(_names)}"
    work = Failing(worker, psycopg.OperationalError("gone"))
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(
            until_transient_passes(
                "writing", work, worker=worker, stopping=lambda: True, backoff=_quick()
            )
        )
    assert work.calls == 1
