"""Erasure vocabulary: how a forgotten person is represented inside shared state.

Person states are tombstoned (see :mod:`tenure.domain.person`). States that belong to
something else (a device) but mention the person keep a tombstone digest, never the raw
id, and every mention of the person is replaced by :data:`ERASED`.
"""

from __future__ import annotations

import hashlib

ERASED = "~erased"
"""Stands in for the id of an erased person in facts that must survive (e.g. a use)."""


def tombstone_of(person_id: str) -> str:
    """A one-way digest of a person id, kept to redact facts that arrive later."""
    return hashlib.sha256(person_id.encode("utf-8")).hexdigest()


def redact(person_id: str | None, tombstones: frozenset[str]) -> str | None:
    """``person_id`` unless it is erased (then :data:`ERASED`); ``None`` stays ``None``."""
    if person_id is None or person_id == ERASED or not tombstones:
        return person_id
    return ERASED if tombstone_of(person_id) in tombstones else person_id
