"""The key an event's identity ``(source, id)`` is stored and deduplicated under.

``ingest_ledger``, ``ingest_pending`` and ``event_archive`` are unique on a 16-byte key, the
first 128 bits of SHA-256 over ``source``, a NUL byte and ``id`` (neither can hold NUL), as
a ``uuid``: a btree entry of ~40 bytes instead of ~80-130 for the two texts. The texts stay
in the rows. Two distinct events sharing a key (taken for one event: the later is answered
``duplicate``) would take about 2^64 events to become likely; ``docs/design/event-storage.md``.
Migration 0014 computes the same key in SQL (:data:`SQL_EXPRESSION`).
"""

from __future__ import annotations

import hashlib
import uuid

SQL_EXPRESSION = (
    "encode(substring(sha256(convert_to(source, 'UTF8') || '\\x00'::bytea"
    " || convert_to(event_id, 'UTF8')) FROM 1 FOR 16), 'hex')::uuid"
)
"""The key in SQL, over columns ``source`` and ``event_id`` (what migration 0014 runs)."""


def identity_key(source: str, event_id: str) -> uuid.UUID:
    """The storage key of the event ``(source, event_id)``."""
    digest = hashlib.sha256(source.encode() + b"\0" + event_id.encode()).digest()
    return uuid.UUID(bytes=digest[:16])
