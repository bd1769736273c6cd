"""Isolating what a stage cannot process: poison records versus transient faults.

Every stage (archiver, SDK validator, projector apply and derive, outbox, replay, archive
catch-up) processes batches. When a batch fails, :func:`poison_category` decides whether
the failure is about the *data* (a value Postgres or the codec cannot hold: retrying will
fail the same way forever) or about the *moment* (a lost connection, a deadlock, a
serialization failure, a broker that did not answer: retrying is right). :func:`isolate`
then splits a failing batch in halves until each poison item stands alone, so everything
else is processed; the stage dead-letters the poison items with their reason and goes on.

Only failures known to be about the data are poison: an unexpected error (a bug, a missing
table) is never taken for bad data, so it cannot dead-letter a whole stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg

from tenure.errors import TenureError

T = TypeVar("T")

POISON_SQLSTATE_CLASSES = {
    "22": "invalid_data",  # data exception: out of range, NUL in text, bad encoding ...
    "23": "constraint",  # integrity constraint violation
    "54": "too_large",  # program limit exceeded: index row size, too many columns ...
}
"""SQLSTATE classes that are about a row's data (the same row fails again)."""

KAFKA_POISON_ERRORS = ("MessageSizeTooLargeError", "RecordTooLargeError", "InvalidRecordError")
"""Broker errors about one record (kafka-python / aiokafka class names)."""


class Unprocessable(TenureError, ValueError):
    """A stage found a value it cannot store (raised by the stages' own checks)."""

    def __init__(self, category: str, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason
        self.field = field


def poison_category(exc: BaseException) -> str | None:
    """The bounded reason class when ``exc`` is about the data, else ``None`` (transient or
    unknown: retry, never dead-letter).

    Categories: ``out_of_range`` (a number the codec or a column cannot hold),
    ``too_large`` (a key over a Postgres index row, a record over the broker's limit),
    ``invalid_data`` (a value Postgres rejects, e.g. NUL in text), ``constraint``,
    ``malformed`` (a value the domain cannot read), or an :class:`Unprocessable`'s own.
    """
    if isinstance(exc, Unprocessable):
        return exc.category
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        if not state and isinstance(exc, psycopg.DataError):
            return "invalid_data"  # refused by the client, e.g. NUL in a text parameter
        return POISON_SQLSTATE_CLASSES.get(state[:2])
    if type(exc).__name__ == "PublishFailed" and exc.__cause__ is not None:
        cause = exc.__cause__  # the broker's own error about the batch
        return "too_large" if type(cause).__name__ in KAFKA_POISON_ERRORS else None
    if type(exc).__name__ in KAFKA_POISON_ERRORS:
        return "too_large"
    if isinstance(exc, OverflowError):
        return "out_of_range"
    if isinstance(exc, TypeError) and "64-bit" in str(exc):  # orjson.JSONEncodeError
        return "out_of_range"
    if isinstance(exc, UnicodeError):
        return "invalid_data"
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return "malformed"
    return None


def is_poison(exc: BaseException) -> bool:
    """True when ``exc`` is about the data (see :func:`poison_category`)."""
    return poison_category(exc) is not None


@dataclass(frozen=True, slots=True)
class Poisoned(Generic[T]):
    """An item that failed on its own, the error and its reason class."""

    item: T
    error: BaseException
    category: str

    @property
    def reason(self) -> str:
        """The error as a one-line reason for the dead letter (bounded length)."""
        text = f"{type(self.error).__name__}: {self.error}".replace("\n", " ")
        return text[:500]


def isolate(items: Sequence[T], attempt: Callable[[Sequence[T]], None]) -> list[Poisoned[T]]:
    """Run ``attempt`` over ``items``; on a poison failure, over each half, recursively, so
    every item that can be processed is, and each poison item fails alone.

    Returns the poison items (in order). A transient or unknown failure propagates at once
    (the caller retries the whole batch). ``attempt`` must leave no effect when it raises
    (a transaction or savepoint per call), and is called O(k log n) times for k poison
    items among n.
    """
    if not items:
        return []
    try:
        attempt(items)
        return []
    except Exception as exc:
        category = poison_category(exc)
        if category is None:
            raise
        if len(items) == 1:
            return [Poisoned(items[0], exc, category)]
    middle = len(items) // 2
    return isolate(items[:middle], attempt) + isolate(items[middle:], attempt)


__all__ = [
    "Poisoned",
    "Unprocessable",
    "is_poison",
    "isolate",
    "poison_category",
]
