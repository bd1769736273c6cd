"""Isolating poison items in a failing batch, and telling poison from transient faults."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.domain.events import DeviceUsed, PaymentCompleted, PaymentItem
from tenure.eventlog.isolation import Unprocessable, isolate, poison_category
from tenure.eventlog.publisher import PublishFailed
from tenure.projection.screen import unstorable


class Poison(ValueError):
    """A data error about one item."""


@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), max_size=60),
)
def test_isolate_processes_every_good_item_once_and_returns_each_poison_item(
    items: list[tuple[int, bool]],
) -> None:
    processed: list[tuple[int, bool]] = []

    def attempt(part: Sequence[tuple[int, bool]]) -> None:
        if any(bad for _, bad in part):
            raise Poison("bad item in part")
        processed.extend(part)  # an effect only when the attempt succeeds

    poisoned = isolate(items, attempt)
    assert [p.item for p in poisoned] == [i for i in items if i[1]]
    assert sorted(processed) == sorted(i for i in items if not i[1])
    assert all(p.category == "malformed" for p in poisoned)


def test_a_transient_error_is_raised_not_isolated() -> None:
    calls: list[int] = []

    def attempt(part: Sequence[int]) -> None:
        calls.append(len(part))
        raise psycopg.errors.SerializationFailure("could not serialize access")

    with pytest.raises(psycopg.errors.SerializationFailure):
        isolate([1, 2, 3, 4], attempt)
    assert calls == [4]  # no bisection: the whole batch is retried by the caller


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (psycopg.errors.ProgramLimitExceeded("index row size 3016 exceeds maximum"), "too_large"),
        (psycopg.errors.NumericValueOutOfRange("bigint out of range"), "invalid_data"),
        (psycopg.errors.UntranslatableCharacter("\\u0000 cannot be converted"), "invalid_data"),
        (
            psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
            "invalid_data",
        ),
        (psycopg.errors.UniqueViolation("duplicate key"), "constraint"),
        (OverflowError("date value out of range"), "out_of_range"),
        (Unprocessable("out_of_range", "amount"), "out_of_range"),
        (KeyError("device_id"), "malformed"),
    ],
)
def test_data_errors_are_poison(error: BaseException, category: str) -> None:
    assert poison_category(error) == category


def test_the_codecs_64_bit_refusal_is_poison() -> None:
    with pytest.raises(TypeError) as refused:
        orjson.dumps(18446744073709551616)
    assert poison_category(refused.value) == "out_of_range"


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.SerializationFailure("could not serialize"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.UndefinedTable("relation does not exist"),  # a bug, not bad data
        RuntimeError("unexpected"),
        TimeoutError(),
    ],
)
def test_transient_and_unknown_errors_are_not_poison(error: BaseException) -> None:
    assert poison_category(error) is None


def test_a_broker_refusal_is_poison_only_when_it_is_about_the_record() -> None:
    class MessageSizeTooLargeError(Exception):
        pass

    try:
        raise PublishFailed("too large") from MessageSizeTooLargeError()
    except PublishFailed as exc:
        assert poison_category(exc) == "too_large"
    try:
        raise PublishFailed("no answer") from TimeoutError()
    except PublishFailed as exc:
        assert poison_category(exc) is None


AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("amount", [2**64, 10**30, -(2**63) - 1])
def test_screening_finds_an_amount_over_64_bits(amount: int) -> None:
    item = PaymentItem("W-1", "hardware", amount, "EUR")
    event = PaymentCompleted(("s", "1"), AT, "o1", "p1", (item,))
    problem = unstorable(event)
    assert problem is not None and problem.category == "out_of_range"
    assert problem.field == "items[0].amount_minor"


def test_screening_finds_nul_and_passes_ordinary_events() -> None:
    assert unstorable(DeviceUsed(("s", "1"), AT, "d1", feature="steps")) is None
    ok = PaymentCompleted(
        ("s", "2"), AT, "o1", "p1", (PaymentItem("W", "hardware", 2**63 - 1, "EUR"),)
    )
    assert unstorable(ok) is None
    problem = unstorable(DeviceUsed(("s", "1"), AT, "d\x001"))
    assert problem is not None and problem.category == "invalid_data"
