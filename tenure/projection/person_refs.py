"""The consume boundary: tokens in decoded events become person ids again (or stay tokens).

Events reach the projection with tokens for person ids (docs/design/erasure.md).
:class:`PersonRefs` resolves them through the vault: a known token becomes its id; an
erased or unknown token stays a token (just another person id, whose erasure event decodes
to the same token); a plain id (archived before migration 0009, or written to a canonical
topic by something other than ingest and the SDK validator) stays as it is unless its token
is erased, then it becomes the token. So nothing resurrects an erased person.

Resolved ids are cached per process; a miss costs one query per batch. An erasure by
another worker is caught where it matters, in the apply transaction: :meth:`PersonRefs.hold`
takes the erasure lock shared and, if the erasure generation moved since the batch was
resolved, renames the ids that became erased.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from psycopg_pool import ConnectionPool

from tenure.domain.events import DomainEvent, IdentityLinked, PersonErasureRequested
from tenure.domain.pseudonymity import is_token, person_ids_named, rename_events
from tenure.privacy.boundary import pseudonymiser_for
from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.storage import person_pseudonyms
from tenure.storage.byte_bounded_lru import ByteBoundedLru
from tenure.storage.connection import Conn

Source = Conn | ConnectionPool
"""A connection, or a pool to take one from only when the database must be asked."""

_RESOLVE_CHUNK = 10_000
ENTRY_OVERHEAD = 100
"""Bytes of one resolved id besides its two strings: its dict slot and hash entry."""


def resolution_bytes(token: str, person_id: str) -> int:
    """The memory of one cached resolution ``token -> person_id``."""
    return sys.getsizeof(token) + sys.getsizeof(person_id) + ENTRY_OVERHEAD


@dataclass(frozen=True, slots=True)
class ResolvedBatch:
    """Events with person ids resolved, and what the apply transaction must re-check."""

    events: list[DomainEvent]
    generation: int
    """The erasure generation the resolution used."""
    ids: frozenset[str] = frozenset()
    """Plain person ids the events name after resolution."""
    erasures: Mapping[str, datetime] = field(default_factory=dict)
    """Person ids (not tokens) the batch erases: purge them before applying it."""
    linked: Mapping[str, datetime] = field(default_factory=dict)
    """Person ids the batch links to an erased token: purge them too."""


def _earliest(times: dict[str, datetime], person_id: str, at: datetime) -> None:
    """Record ``at`` for a person id (not a token), keeping the earliest."""
    if not is_token(person_id):
        known = times.get(person_id)
        times[person_id] = at if known is None else min(known, at)


class PersonRefs:
    """Resolves person ids of decoded events for one database (one per process)."""

    def __init__(self, limit_bytes: int = 16 << 20) -> None:
        self._ids: ByteBoundedLru[str] = ByteBoundedLru(limit_bytes)
        """Known token -> person id (:func:`resolution_bytes` each), the oldest first."""
        self._lock = threading.RLock()  # the apply stage's threads share one PersonRefs
        self._erased: frozenset[str] = frozenset()
        self._generation = -1
        self._pseudonymiser: Pseudonymiser | None = None

    def warm(self, pseudonymiser: Pseudonymiser, known: Mapping[str, str]) -> None:
        """Start with a pseudonymiser and known ``token -> id`` pairs, no erasures (for
        benchmarks: then :meth:`resolve` of known tokens asks no database)."""
        self._pseudonymiser = pseudonymiser
        for token, person_id in known.items():
            self._remember(token, person_id)
        self._generation = max(self._generation, 0)

    def pseudonymiser(self, conn: Conn) -> Pseudonymiser:
        """The database's pseudonymiser (read once, in a transaction of its own or a savepoint
        of the caller's, so ``conn`` is left as it was: a caller may start a repeatable-read
        transaction on it next)."""
        if self._pseudonymiser is None:
            with conn.transaction():
                self._pseudonymiser = pseudonymiser_for(conn)
        return self._pseudonymiser

    @property
    def limit_bytes(self) -> int:
        """The bound of the cached resolutions' estimated bytes."""
        return self._ids.limit_bytes

    @property
    def used_bytes(self) -> int:
        """The estimated bytes of the cached resolutions (within :attr:`limit_bytes`)."""
        return self._ids.used_bytes

    def refresh(self, conn: Conn) -> int:
        """Read the erasure generation and erased tokens; return the generation."""
        generation, erased = person_pseudonyms.erased_tokens(conn)
        if generation != self._generation:
            self._erased = erased
            self._generation = generation
            with self._lock:
                for token in erased & self._ids.values.keys():
                    self._ids.discard(token)
        return generation

    def _remember(self, token: str, person_id: str) -> None:
        """Cache a resolution; drop the oldest ones while over the byte bound."""
        with self._lock:
            self._ids.add(token, person_id, resolution_bytes(token, person_id))

    @contextmanager
    def _connected(self, source: Source | None) -> Iterator[Conn]:
        if source is None:
            raise RuntimeError("the person ids cannot be resolved without a database")
        if isinstance(source, ConnectionPool):
            with source.connection() as conn:
                yield conn
        else:
            with nullcontext(source) as conn:
                yield conn

    def resolve(self, source: Source | None, events: list[DomainEvent]) -> ResolvedBatch:
        """Resolve the person ids of ``events`` (one query for the tokens not cached; a
        pool's connection is taken only when the database must be asked)."""
        seen = {value for event in events for value in person_ids_named(event)}
        mapping = self.resolve_names(source, seen)
        resolved = rename_events(events, mapping) if mapping else events
        ids = frozenset(p for p in (mapping.get(v, v) for v in seen) if not is_token(p))
        erasures: dict[str, datetime] = {}
        linked: dict[str, datetime] = {}
        for event in resolved:
            kind = type(event)
            if kind is PersonErasureRequested:
                assert isinstance(event, PersonErasureRequested)
                _earliest(erasures, event.person_id, event.at)
            elif kind is IdentityLinked:  # the domain erases an id linked to an erased one
                assert isinstance(event, IdentityLinked)
                a, b = event.person_id, event.alias_id
                if a in self._erased or b in self._erased:
                    _earliest(linked, b if a in self._erased else a, event.at)
        return ResolvedBatch(resolved, self._generation, ids, erasures, linked)

    def resolve_names(self, source: Source | None, values: Iterable[str]) -> dict[str, str]:
        """What each of ``values`` (person ids or tokens, as events name them) resolves to,
        for those that change (as :meth:`resolve` renames them)."""
        if self._generation < 0 or self._pseudonymiser is None:
            with self._connected(source) as conn:
                self.refresh(conn)
                self.pseudonymiser(conn)
        pseudonymiser = self._pseudonymiser
        assert pseudonymiser is not None
        known, erased = self._ids.values, self._erased
        mapping: dict[str, str] = {}
        misses: set[str] = set()
        for value in values:
            if is_token(value):
                found = known.get(value)
                if found is not None:
                    mapping[value] = found
                elif value not in erased:
                    misses.add(value)
            else:
                token = pseudonymiser.token(value)
                if token in erased:
                    mapping[value] = token
        if misses:
            with self._connected(source) as conn:
                self._resolve_misses(conn, misses, mapping)
        return mapping

    def _resolve_misses(self, conn: Conn, misses: set[str], mapping: dict[str, str]) -> None:
        ordered = sorted(misses)
        for start in range(0, len(ordered), _RESOLVE_CHUNK):
            found = person_pseudonyms.resolve(conn, ordered[start : start + _RESOLVE_CHUNK])
            for token, person_id in found.items():
                if person_id is not None:
                    self._remember(token, person_id)
                    mapping[token] = person_id

    def hold(self, conn: Conn, batch: ResolvedBatch) -> list[DomainEvent]:
        """Take the erasure lock shared for the caller's (read committed) transaction, as its
        first statement, and return the batch's events as they must be applied now: with
        the ids erased since the batch was resolved renamed to their tokens."""
        generation = person_pseudonyms.hold_shared(conn)
        if generation == batch.generation:
            return batch.events
        self.refresh(conn)
        pseudonymiser = self.pseudonymiser(conn)
        gone = {p: t for p in batch.ids if (t := pseudonymiser.token(p)) in self._erased}
        return rename_events(batch.events, gone) if gone else batch.events

    def forget(self, person_ids: Iterable[str]) -> None:
        """Drop cached resolutions to ``person_ids`` (after this process erased them)."""
        gone = set(person_ids)
        with self._lock:
            for token in [t for t, p in self._ids.values.items() if p in gone]:
                self._ids.discard(token)
        self._generation = -1  # re-read the erased tokens before the next resolution
