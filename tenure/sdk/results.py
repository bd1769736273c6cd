"""What became of one event sent through the HTTP producer: one typed result per event.

``Accepted`` and ``Duplicate`` mean delivered (a duplicate's ``(source, id)`` was accepted
before, e.g. by an earlier attempt of the same request whose answer was lost); ``Rejected``
carries the offending field and the reason the ingest service gave; ``Undelivered`` means
the SDK gave up (a request-level refusal such as 401, or the delivery deadline passed while
the service kept answering 503 or could not be reached). Import nothing but the standard
library here: the SDK must work without the server's dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Accepted:
    """The event is new: published and acknowledged by the broker."""

    id: str
    source: str
    attempts: int = 1
    """Requests it took (more than 1 after retries)."""
    delivered: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The event's ``(source, id)`` was accepted before: it is in the log once (delivered)."""

    id: str
    source: str
    attempts: int = 1
    delivered: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Rejected:
    """The service refused the event: ``field`` names what is wrong, ``reason`` says why."""

    id: str | None
    source: str | None
    field: str | None
    reason: str
    attempts: int = 1
    delivered: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Undelivered:
    """The SDK gave up on the event's request; ``status`` is the last HTTP status answered.

    ``reason`` says what the last attempt met (a refusal, 503, a connection error, a timeout).

    Sending it again later is safe: the same id is answered ``duplicate`` if an earlier
    attempt reached the log after all.
    """

    id: str | None
    source: str | None
    reason: str
    status: int | None = None
    attempts: int = 0
    delivered: ClassVar[bool] = False


EventResult = Accepted | Duplicate | Rejected | Undelivered
"""The outcome of one event."""
