"""Ingesting one batch: validate, claim identities, publish, answer per event.

Every event of a batch ends in exactly one outcome: ``accepted`` (new, published and
acknowledged by the broker), ``duplicate`` (its ``(source, id)`` was accepted before, or
earlier in the same batch) or ``rejected`` (with the field and the reason). If the broker
does not acknowledge, the claim is rolled back and the whole batch is refused (503), so a
retry is safe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from psycopg_pool import ConnectionPool

from services.ingest import metrics
from tenure.contract import CloudEvent, Rejection, validate_event
from tenure.contract.envelope import INGEST_TIME_ATTRIBUTE, format_time
from tenure.eventlog.publisher import EventPublisher, encode_envelope, event_record
from tenure.privacy.boundary import tokenise_ledger_entries
from tenure.storage import ledger

Outcome = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class EventResult:
    """The outcome of one event of a batch, at its position ``index``."""

    index: int
    status: Outcome
    id: str | None = None
    source: str | None = None
    field: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class BatchResult:
    """Outcomes of a whole batch, in request order, and their counts."""

    results: list[EventResult] = field(default_factory=list)

    def count(self, status: Outcome) -> int:
        """How many events ended with ``status``."""
        return sum(1 for r in self.results if r.status == status)


def _identity_of(item: object) -> tuple[str | None, str | None]:
    if isinstance(item, dict):
        source, event_id = item.get("source"), item.get("id")
        return (
            source if isinstance(source, str) else None,
            event_id if isinstance(event_id, str) else None,
        )
    return None, None


def _envelope(event: CloudEvent, ingest_stamp: str) -> dict[str, Any]:
    """``event.to_json_dict(ingest_time=...)`` with the ingest time already formatted (the
    same keys in the same order: ``ingesttime`` where a sent one was, else before ``data``)."""
    out = event.to_json_dict()
    data = out.pop("data")
    out[INGEST_TIME_ATTRIBUTE] = ingest_stamp
    out["data"] = data
    return out


def ingest_batch(
    items: list[object],
    *,
    producer: str,
    pool: ConnectionPool,
    publisher: EventPublisher,
    future_tolerance: timedelta,
    now: datetime | None = None,
) -> BatchResult:
    """Validate, deduplicate and publish ``items``; raise ``PublishFailed`` on broker failure."""
    received_at = now or datetime.now(UTC)
    outcome: list[EventResult | None] = [None] * len(items)
    fresh: dict[tuple[str, str], tuple[int, CloudEvent]] = {}
    tallies: list[tuple[str, str, str]] = []  # counted only once the batch is answered
    for index, item in enumerate(items):
        checked = validate_event(item, now=received_at, future_tolerance=future_tolerance)
        if isinstance(checked, Rejection):
            source, event_id = _identity_of(item)
            outcome[index] = EventResult(
                index, "rejected", event_id, source, checked.field, checked.reason
            )
            event_type = item.get("type") if isinstance(item, dict) else None
            label = (
                event_type
                if checked.category != "unknown_type" and isinstance(event_type, str)
                else "unknown"
            )
            tallies.append(("rejected", label, checked.category))
        elif checked.identity in fresh:
            outcome[index] = EventResult(index, "duplicate", checked.id, checked.source)
            tallies.append(("duplicate", checked.type, ""))
        else:
            fresh[checked.identity] = (index, checked)

    stamp = format_time(received_at)  # every event's ``ingesttime``, formatted once
    entries = [
        ledger.LedgerEntry(
            source=event.source,
            event_id=event.id,
            event_type=event.type,
            topic=event.topic(),
            record_key=event.key(),
            envelope=_envelope(event, stamp),
            producer=producer,
            ingested_at=received_at,
        )
        for _, event in fresh.values()
    ]
    if entries:
        with metrics.PUBLISH_SECONDS.time(), pool.connection() as conn:
            # Person ids -> tokens, their vault rows committed before anything is published:
            # a consumer must never meet a token the vault does not know yet (it would take
            # it for an erased or foreign person and project it apart from the person).
            # The vault's transaction and the claim go in one round trip (pipeline mode);
            # the claim's transaction stays open until the broker acknowledged every record.
            with conn.pipeline():
                with conn.transaction():
                    entries = tokenise_ledger_entries(conn, entries)
                values = [encode_envelope(e.envelope) for e in entries]
                claimed = ledger.claim(conn, entries, encoded=values)
            try:
                publisher.publish(
                    [
                        event_record(e.topic, e.record_key, e.envelope, received_at, value=v)
                        for e, v in zip(entries, values, strict=True)
                        if e.identity in claimed
                    ]
                )
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
    else:
        claimed = set()
    for identity, (index, event) in fresh.items():
        status: Outcome = "accepted" if identity in claimed else "duplicate"
        outcome[index] = EventResult(index, status, event.id, event.source)
        tallies.append((status, event.type, ""))
    for labels, count in Counter(tallies).items():  # one increment per label set
        metrics.EVENTS.labels(*labels).inc(count)
    return BatchResult([r for r in outcome if r is not None])
