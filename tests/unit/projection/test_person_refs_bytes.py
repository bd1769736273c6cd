"""Resolved person ids are cached within a byte bound, the oldest dropped first."""

from __future__ import annotations

from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.projection.person_refs import PersonRefs, resolution_bytes


def test_resolutions_stay_within_their_byte_bound() -> None:
    pseudonymiser = Pseudonymiser(b"k" * 32)
    known = {pseudonymiser.token(f"person-{i}"): f"person-{i}" for i in range(5000)}
    one = resolution_bytes(*next(iter(known.items())))
    refs = PersonRefs(limit_bytes=100 * one)
    refs.warm(pseudonymiser, known)
    assert refs.used_bytes <= refs.limit_bytes
    kept = list(known.items())[-95:]
    # the newest are still resolved without a database; the oldest are gone
    events_free = refs.resolve(None, [])
    assert events_free.events == []
    held = refs._ids.values
    assert all(held.get(t) == p for t, p in kept)
    assert next(iter(known)) not in held
    assert refs.used_bytes == sum(resolution_bytes(t, p) for t, p in held.items())
