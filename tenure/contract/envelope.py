"""The validated in-memory form of a Tenure event: a CloudEvents 1.0 event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenure.contract.topics import ROUTES, Route

SPECVERSION = "1.0"
"""The CloudEvents specification version of every Tenure event."""
DATA_CONTENT_TYPE = "application/json"
"""The only ``datacontenttype`` Tenure events carry."""
INGEST_TIME_ATTRIBUTE = "ingesttime"
"""CloudEvents extension attribute reserved for the ingest service's receive time."""
CORE_ATTRIBUTES: frozenset[str] = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}
)
"""Attribute names that are not extensions."""


def format_time(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A validated Tenure event (CloudEvents 1.0).

    ``time`` is always timezone-aware and in UTC (a naive datetime is refused). ``data`` and
    ``extensions`` are plain dicts for speed; treat them as read-only. ``(source, id)``
    identifies the event (see :attr:`identity`).
    """

    source: str
    id: str
    type: str
    time: datetime
    subject: str | None
    data: dict[str, Any]
    extensions: dict[str, Any]

    def __post_init__(self) -> None:
        offset = self.time.utcoffset()
        if offset is None:
            raise ValueError("CloudEvent.time must be timezone-aware")
        clashing = CORE_ATTRIBUTES.intersection(self.extensions)
        if clashing:
            raise ValueError(f"extensions must not use core attribute names: {sorted(clashing)}")
        if self.time.tzinfo is not UTC:
            object.__setattr__(self, "time", self.time.astimezone(UTC))

    @property
    def identity(self) -> tuple[str, str]:
        """The pair ``(source, id)`` that identifies this event."""
        return (self.source, self.id)

    def _route(self) -> Route:
        try:
            return ROUTES[self.type]
        except KeyError:
            raise ValueError(f"no route for event type {self.type!r}") from None

    def key(self) -> str:
        """Return the Kafka record key: the ``data`` field named by the type's route."""
        return str(self.data[self._route().key_field])

    def topic(self) -> str:
        """Return the canonical Kafka topic this event type is routed to."""
        return self._route().topic

    def to_json_dict(self, ingest_time: datetime | None = None) -> dict[str, Any]:
        """Return the event as a CloudEvents structured-mode JSON object.

        ``time`` is written as RFC 3339 UTC with ``Z``. When ``ingest_time`` is given, the
        ``ingesttime`` extension is set to it (same format), replacing any value the producer
        sent. Other extensions are written as they are.
        """
        out: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": format_time(self.time),
        }
        if self.subject is not None:
            out["subject"] = self.subject
        out["datacontenttype"] = DATA_CONTENT_TYPE
        out.update(self.extensions)
        if ingest_time is not None:
            out[INGEST_TIME_ATTRIBUTE] = format_time(ingest_time)
        out["data"] = self.data
        return out
