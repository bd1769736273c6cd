"""Re-driving dead letters: give each one back to the stage it came from.

- a record read from a topic (archiver, SDK validator, projector, outbox) is published
  again to that topic, with its original key and value (stages that see it again
  de-duplicate: the archive on ``(source, id)``, the projection by merging);
- an event read back from the archive (catch-up, replay) is applied again from the archive;
- a key the derive stage could not derive is queued for derive again.

The row is marked re-driven in the same transaction; a letter that fails again is
dead-lettered again by its stage (the row's ``occurrences`` grows and it is pending again).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tenure.contract.topics import LIFECYCLE_TRANSITIONS
from tenure.eventlog.deadletter import DeadLetterSink
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.projection.catch_up import apply_archived
from tenure.projection.derive import QueuedKey, requeue
from tenure.storage import archive, dead_letters
from tenure.storage.archive import ArchivedEvent
from tenure.storage.dead_letters import DeadLetterRow


@dataclass(frozen=True, slots=True)
class Redriven:
    """What a re-drive did, per way."""

    republished: int = 0
    reapplied: int = 0
    requeued: int = 0
    skipped: int = 0
    """Letters with nowhere to go (no topic, archive row or key): left pending."""

    @property
    def total(self) -> int:
        """Letters re-driven."""
        return self.republished + self.reapplied + self.requeued


def _topic_of(letter: DeadLetterRow) -> str | None:
    if letter.stage == "outbox":
        return LIFECYCLE_TRANSITIONS
    return letter.topic


def _derive_key(letter: DeadLetterRow) -> QueuedKey | None:
    try:
        named = json.loads(letter.payload)
    except ValueError:
        return None
    for kind in ("person", "device"):
        if isinstance(named, dict) and isinstance(named.get(f"{kind}_id"), str):
            return (kind, named[f"{kind}_id"])
    return None


def _archived(conn: psycopg.Connection[Any], seq: int) -> ArchivedEvent | None:
    return archive.read_seq(conn, seq)


def redrive(
    pool: ConnectionPool,
    letters: Sequence[DeadLetterRow],
    publisher: EventPublisher | None,
) -> Redriven:
    """Re-drive ``letters`` (see the module doc); ``publisher`` is needed only for
    letters that go back to a topic (without one they are skipped)."""
    republished = reapplied = requeued = skipped = 0
    for letter in letters:
        topic = _topic_of(letter)
        with pool.connection() as conn, conn.transaction():
            if letter.stage == "derive":
                key = _derive_key(letter)
                if key is None:
                    skipped += 1
                    continue
                dead_letters.mark_redriven(conn, [letter.id])
                requeue(conn, [key])
                requeued += 1
            elif letter.archive_seq is not None:
                row = _archived(conn, letter.archive_seq)
                if row is None:
                    skipped += 1
                    continue
                dead_letters.mark_redriven(conn, [letter.id])
                sink = DeadLetterSink(letter.stage, publisher)
                _, again = apply_archived(conn, [row], sink)
                sink.count(again)  # failed again: pending again, one more occurrence
                reapplied += 1 - len(again)
                skipped += len(again)
            elif topic is not None and publisher is not None:
                dead_letters.mark_redriven(conn, [letter.id])
                record_key = (letter.record_key or b"").decode(errors="replace")
                publisher.publish([OutgoingRecord(topic, record_key, letter.payload)])
                republished += 1
            else:
                skipped += 1
    return Redriven(republished, reapplied, requeued, skipped)
