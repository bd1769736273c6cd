"""Lifecycle transitions between two views, with deterministic ids.

A transition is emitted for a change of segment, stage, level, tier or super-user flag,
and once when a person is erased. Its instant is the moment the change took effect, read
from the data rather than from when it was noticed:

- ``stage``: the new view's ``stage_since`` (when the stage began; a stage reached by the
  passage of time begins at midnight UTC of that day);
- ``erased``: the erasure request's event time;
- every other kind: the event time of the latest fact at or before the new view's
  ``as_of`` (the fact that caused the change), or ``as_of`` when there is none.

The id is ``uuid5(TRANSITION_NAMESPACE, person_id|kind|old|new|instant)``, so
re-processing the same events never yields a different id and consumers can de-duplicate.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tenure.domain.view import PersonView, absent_view

TRANSITION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tenure:lifecycle-transition")
"""Namespace of the uuid5 transition ids."""

KINDS: tuple[str, ...] = ("segment", "stage", "level", "tier", "super_user", "erased")
"""Transition kinds, in the order they are emitted."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One person's label changed from ``old`` to ``new`` at ``at``."""

    id: str
    person_id: str
    kind: str
    old: str
    new: str
    at: datetime


def transition_id(person_id: str, kind: str, old: str, new: str, at: datetime) -> str:
    """The deterministic id of a transition (a uuid5 over its fields, instant in UTC)."""
    instant = at.astimezone(UTC).isoformat(timespec="microseconds")
    name = "\x1f".join((person_id, kind, old, new, instant))
    # ``str(uuid.uuid5(TRANSITION_NAMESPACE, name))`` without building a ``UUID`` (2.1 us
    # an id instead of 4.1; a test checks the two agree): the first 16 bytes of the SHA-1,
    # version 5 in the high nibble of byte 6, the RFC 4122 variant in byte 8.
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = TRANSITION_NAMESPACE.bytes


def _labels(view: PersonView) -> dict[str, str]:
    return {
        "segment": str(view.segment),
        "stage": str(view.stage),
        "level": str(view.level),
        "tier": view.tier,
        "super_user": "true" if view.is_super_user else "false",
        "erased": "erased" if view.erased else "present",
    }


def _instant(kind: str, view: PersonView) -> datetime:
    if kind == "stage" and view.stage_since is not None:
        return view.stage_since
    return view.last_fact_at or view.as_of


def transitions(old_view: PersonView | None, new_view: PersonView) -> list[Transition]:
    """Label changes from ``old_view`` (``None``: nothing known yet) to ``new_view``.

    When the new view is erased only the ``erased`` transition is emitted.
    """
    old = old_view or absent_view(new_view.person_id, new_view.as_of)
    if old.person_id != new_view.person_id:
        raise ValueError("transitions compare two views of the same person")
    before, after = _labels(old), _labels(new_view)
    kinds = ("erased",) if new_view.erased else KINDS[:-1]
    found: list[Transition] = []
    for kind in kinds:
        if before[kind] == after[kind]:
            continue
        at = _instant(kind, new_view)
        tid = transition_id(new_view.person_id, kind, before[kind], after[kind], at)
        found.append(Transition(tid, new_view.person_id, kind, before[kind], after[kind], at))
    return found
