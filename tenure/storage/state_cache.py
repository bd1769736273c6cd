"""The projector's in-process cache of decoded raw states, bounded in bytes.

Compacted states are kept with the ``xmin`` of the row they were read from or written to
(:mod:`tenure.storage.raw_states` uses one only while the row still carries it), deltas by
their document. Sizes are estimated from document lengths, measured on simulated populations.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Generic, TypeVar

from tenure.domain.device import DeviceState
from tenure.domain.person import PersonState
from tenure.storage.byte_bounded_lru import ByteBoundedLru

S = TypeVar("S")


ENTRY_OVERHEAD = 1024
"""Bytes of a cached decoded state besides what grows with its document: the state's fixed
dataclass objects, its key, the entry tuple and the dict slot (measured with tracemalloc on
simulated populations: ``tests/unit/storage/test_state_cache_bytes.py``)."""
DEVICE_BYTES_PER_CHAR = 4.0
"""Bytes of a decoded device state per character of its document. Measured over many states
held at once (a simulated population): 11.2 KB for a 3.1 KB document, 1.3 KB for a delta of
135 characters."""
PERSON_BYTES_PER_CHAR = 2.5
"""Bytes of a decoded person state per character of its document. Measured likewise: 2.3 KB
for a 750-character document, 2.1 KB for a 670-character delta."""
STATES_SHARE = 0.75
"""Share of a :class:`StateCache`'s bytes for compacted states (the rest: delta documents,
which live only until the derive stage compacts their key)."""


def entry_bytes(key: str, document_chars: int, per_char: float) -> int:
    """The estimated memory of one cached entry: a state decoded from a document of
    ``document_chars`` characters, under ``key``."""
    return ENTRY_OVERHEAD + len(key) + int(per_char * document_chars)


class StateCache(Generic[S]):
    """Compacted states this process wrote or read, each with its row's ``xmin`` then, and
    decoded deltas by their document (a document names its key, so equal documents are
    equal states), bounded in bytes.

    Each entry's size is estimated from its document's length (:func:`entry_bytes`); when a
    new entry would pass the bound, the least recently used entries are dropped (a miss is
    only slower, never wrong: every use is checked against the row's version). The apply
    and derive threads share a cache, so every change holds a lock.
    """

    def __init__(
        self,
        limit_bytes: int = 32 << 20,
        per_char: float = DEVICE_BYTES_PER_CHAR,
        entries: Mapping[str, tuple[int, S]] | None = None,
    ) -> None:
        self.per_char = per_char
        self._states: ByteBoundedLru[tuple[int, S]] = ByteBoundedLru(
            int(limit_bytes * STATES_SHARE)
        )
        self._deltas: ByteBoundedLru[S] = ByteBoundedLru(limit_bytes - self._states.limit_bytes)
        self._lock = threading.Lock()
        self.hits = 0
        """Compacted states served from the cache (:meth:`fresh`)."""
        self.misses = 0
        """Compacted states decoded instead (:meth:`count_decoded`)."""
        for key, (xmin, state) in (entries or {}).items():
            self._states.add(key, (xmin, state), entry_bytes(key, 0, per_char))

    @property
    def entries(self) -> Mapping[str, tuple[int, S]]:
        """The cached compacted states: key -> (row ``xmin``, state)."""
        return self._states.values

    @property
    def deltas(self) -> Mapping[str, S]:
        """The cached decoded deltas: document -> state."""
        return self._deltas.values

    @property
    def limit_bytes(self) -> int:
        """The bound of the estimated bytes held."""
        return self._states.limit_bytes + self._deltas.limit_bytes

    @property
    def used_bytes(self) -> int:
        """The estimated bytes held now (never above :attr:`limit_bytes`)."""
        return self._states.used_bytes + self._deltas.used_bytes

    @property
    def evicted(self) -> int:
        """Entries dropped to stay within the bound, so far."""
        return self._states.evicted + self._deltas.evicted

    def fresh(self, key: str, xmin: int) -> S | None:
        """The cached state of ``key`` if its row still has ``xmin``, else ``None``."""
        with self._lock:
            entry = self._states.values.get(key)
            if entry is not None and entry[0] == xmin:
                self._states.touch(key)
                self.hits += 1
                return entry[1]
            return None  # dropped meanwhile: the caller decodes it (a miss it counts)

    def count_decoded(self, n: int) -> None:
        """Count ``n`` compacted states decoded from their documents (misses)."""
        with self._lock:
            self.misses += n

    def put(
        self, versions: Mapping[str, int], states: Mapping[str, S], chars: Mapping[str, int]
    ) -> None:
        """Remember ``states`` under the row versions the database returned (``chars``: the
        length of each state's document, for its size)."""
        per_char = self.per_char
        with self._lock:
            for key, xmin in versions.items():
                size = entry_bytes(key, chars.get(key, 0), per_char)
                self._states.add(key, (xmin, states[key]), size)

    def remember_deltas(self, documents: Mapping[str, S]) -> None:
        """Remember decoded (or just encoded) delta documents."""
        per_char = self.per_char + 1  # the document itself is the key
        with self._lock:
            for document, state in documents.items():
                self._deltas.add(document, state, entry_bytes("", len(document), per_char))

    def clear(self) -> None:
        """Forget everything (partitions revoked)."""
        with self._lock:
            self._states.clear()
            self._deltas.clear()


RAW_STATES_SHARE = 0.9
"""Share of the projector's cache bytes for raw states (the rest: resolved person ids)."""


class RawCaches:
    """The compacted raw states this process last wrote or read, within ``limit_bytes``
    (half for devices, half for persons)."""

    def __init__(self, limit_bytes: int = 64 << 20) -> None:
        self.devices: StateCache[DeviceState] = StateCache(limit_bytes // 2, DEVICE_BYTES_PER_CHAR)
        self.persons: StateCache[PersonState] = StateCache(
            limit_bytes - limit_bytes // 2, PERSON_BYTES_PER_CHAR
        )

    @property
    def used_bytes(self) -> int:
        """The estimated bytes held now."""
        return self.devices.used_bytes + self.persons.used_bytes

    def clear(self) -> None:
        """Forget every cached state."""
        self.devices.clear()
        self.persons.clear()
