"""Raw states in Postgres, read as the join of a compacted row and a log of deltas.

A key's raw state (a join-semilattice) is stored in two parts: its *compacted* row
(``raw_device_states`` / ``raw_person_states``) and any number of *delta* rows
(``raw_device_deltas`` / ``raw_person_deltas``), each the fold of one batch's facts about the
key. The state is their join, so the apply stage appends a batch's deltas without reading
or locking anything (:mod:`tenure.projection.raw_log`), and compaction, which folds
deltas into the compacted rows and deletes them in one transaction, never changes what a
reader sees.

Decoded compacted states are cached in process, each tagged with its row's ``xmin`` (the id
of the transaction that last wrote it): a cached state is used only while the row still
carries that ``xmin``, so a compaction by another worker or a rolled back write is always
seen. Deltas are small and always decoded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from psycopg import sql

from tenure.domain.device import DeviceState, fold_device_events, join_devices
from tenure.domain.person import PersonState, join_persons
from tenure.domain.state_codec import (
    decode_device_state,
    decode_person_state,
    encode_device_delta,
    encode_device_state,
    encode_person_state,
)
from tenure.storage.connection import Conn as Conn  # raw_log imports it from here

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class RawTable(Generic[S]):
    """How one kind of raw state is stored, encoded, folded and joined."""

    table: str
    """The compacted states, one row per key."""
    deltas: str
    """The log of per-batch deltas, any number of rows per key."""
    key: str
    encode: Callable[[S], bytes]
    """Canonical bytes (compacted rows)."""
    encode_delta: Callable[[S], bytes]
    """Bytes ``decode`` reads back exactly, as fast as possible (delta rows)."""
    decode: Callable[[bytes | str], S]
    fold: Callable[[str, list[Any]], S]
    """A key's state holding only one batch's parts."""
    join: Callable[[str, list[S]], S]
    """The join of states of one key."""


def _fold_devices(device_id: str, events: list[Any]) -> DeviceState:
    return fold_device_events(device_id, None, events)


DEVICES: RawTable[DeviceState] = RawTable(
    "raw_device_states",
    "raw_device_deltas",
    "device_id",
    encode_device_state,
    encode_device_delta,
    decode_device_state,
    _fold_devices,
    join_devices,
)
PERSONS: RawTable[PersonState] = RawTable(
    "raw_person_states",
    "raw_person_deltas",
    "person_id",
    encode_person_state,
    encode_person_state,
    decode_person_state,
    join_persons,
    join_persons,
)


ENTRY_OVERHEAD = 1024
"""Bytes of a cached decoded state besides what grows with its document: the state's fixed
dataclass objects, its key, the entry tuple and the dict slot (measured with tracemalloc on
simulated populations: ``tests/unit/projection/test_raw_cache_bytes.py``)."""
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


@dataclass(slots=True)
class _Bounded(Generic[S]):
    """Values by key with their estimated bytes, least recently used first, evicted from the
    front while over ``limit_bytes``."""

    limit_bytes: int
    values: dict[str, S] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    used_bytes: int = 0
    evicted: int = 0

    def add(self, key: str, value: S, size: int) -> None:
        """Remember ``value`` (most recently used), then evict until within the bound."""
        old = self.sizes.pop(key, 0)
        self.values.pop(key, None)
        self.used_bytes += size - old
        self.values[key] = value
        self.sizes[key] = size
        while self.used_bytes > self.limit_bytes and self.values:
            oldest = next(iter(self.values))
            del self.values[oldest]
            self.used_bytes -= self.sizes.pop(oldest, 0)
            self.evicted += 1

    def touch(self, key: str) -> None:
        """Mark ``key`` (held) as the most recently used."""
        value = self.values.pop(key)
        self.values[key] = value
        self.sizes[key] = self.sizes.pop(key, 0)

    def clear(self) -> None:
        """Forget everything."""
        self.values.clear()
        self.sizes.clear()
        self.used_bytes = 0


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
        self._states: _Bounded[tuple[int, S]] = _Bounded(int(limit_bytes * STATES_SHARE))
        self._deltas: _Bounded[S] = _Bounded(limit_bytes - self._states.limit_bytes)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
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
            self.misses += 1
            return None

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


def payload(docs: Mapping[str, bytes]) -> str:
    """One JSON object ``{key: state document}`` built from already-encoded documents."""
    parts = b",".join(orjson.dumps(key) + b":" + doc for key, doc in docs.items())
    return (b"{" + parts + b"}").decode()


def compacted_states(
    conn: Conn, kind: RawTable[S], cache: StateCache[S], keys: list[str]
) -> dict[str, S]:
    """The compacted states of ``keys`` that have a row.

    Only the states the cache does not hold at the row's current version are sent and
    decoded.
    """
    if not keys:
        return {}
    query = sql.SQL(
        "SELECT r.{k}, r.xmin::text::bigint, CASE WHEN r.xmin::text::bigint = c.xmin THEN NULL"
        " ELSE r.state::text END FROM {t} r LEFT JOIN unnest(%b::text[], %b::bigint[])"
        " AS c(key, xmin) ON c.key = r.{k} WHERE r.{k} = ANY(%b)"
    ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table))
    held = [(k, entry[0]) for k in keys if (entry := cache.entries.get(k)) is not None]
    states: dict[str, S] = {}
    decoded: dict[str, int] = {}
    chars: dict[str, int] = {}
    dropped: list[str] = []  # cleared from the cache meanwhile (by another thread)
    params = ([k for k, _ in held], [x for _, x in held], keys)
    for key, xmin, text in conn.execute(query, params).fetchall():
        if text is None:
            state = cache.fresh(key, xmin)
            if state is None:
                dropped.append(key)
                continue
        else:
            state = kind.decode(text)
            decoded[key], chars[key] = xmin, len(text)
            cache.misses += 1
        states[key] = state
    if dropped:
        again = sql.SQL(
            "SELECT {k}, xmin::text::bigint, state::text FROM {t} WHERE {k} = ANY(%b)"
        ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table))
        for key, xmin, text in conn.execute(again, (dropped,)).fetchall():
            states[key], decoded[key], chars[key] = kind.decode(text), xmin, len(text)
    cache.put(decoded, states, chars)
    return states


def pending_deltas(
    conn: Conn, kind: RawTable[S], cache: StateCache[S], keys: list[str]
) -> dict[str, list[S]]:
    """The decoded deltas of ``keys`` not yet compacted (decoding only documents the cache
    does not hold)."""
    if not keys:
        return {}
    query = sql.SQL("SELECT {k}, state::text FROM {d} WHERE {k} = ANY(%b)").format(
        k=sql.Identifier(kind.key), d=sql.Identifier(kind.deltas)
    )
    return group_decoded(kind, conn.execute(query, (keys,)).fetchall(), cache)


def group_decoded(
    kind: RawTable[S], rows: Iterable[tuple[Any, ...]], cache: StateCache[S] | None = None
) -> dict[str, list[S]]:
    """``(key, document)`` delta rows decoded and grouped by key."""
    out: dict[str, list[S]] = {}
    decode = kind.decode
    known = {} if cache is None else cache.deltas
    decoded: dict[str, S] = {}
    for key, text in rows:
        state = known.get(text)
        if state is None:
            state = decoded[text] = decode(text)
        out.setdefault(key, []).append(state)
    if cache is not None:
        cache.remember_deltas(decoded)
    return out


def joined(key: str, kind: RawTable[S], base: S | None, deltas: list[S]) -> S:
    """A key's state: its compacted state joined with its deltas."""
    if not deltas:
        assert base is not None
        return base
    return kind.join(key, deltas if base is None else [base, *deltas])


@dataclass(frozen=True, slots=True)
class RawRead(Generic[S]):
    """Raw states read: each key's compacted row joined with its deltas."""

    states: dict[str, S]
    with_deltas: frozenset[str]
    """Keys that had deltas (their state differs from their compacted row)."""


def read_cached(conn: Conn, kind: RawTable[S], cache: StateCache[S], keys: list[str]) -> RawRead[S]:
    """The raw states of ``keys`` that exist (compacted row joined with deltas; no lock)."""
    base = compacted_states(conn, kind, cache, keys)
    deltas = pending_deltas(conn, kind, cache, keys)
    states = {k: joined(k, kind, base.get(k), deltas.get(k, [])) for k in {*base, *deltas}}
    return RawRead(states, frozenset(deltas))


def read_all(conn: Conn, kind: RawTable[S]) -> dict[str, S]:
    """Every raw state of the table (for checks and tools, not the hot path)."""
    deltas = group_decoded(
        kind,
        conn.execute(
            sql.SQL("SELECT {k}, state::text FROM {d}").format(
                k=sql.Identifier(kind.key), d=sql.Identifier(kind.deltas)
            )
        ).fetchall(),
    )
    base = {
        str(k): kind.decode(v)
        for k, v in conn.execute(
            sql.SQL("SELECT {k}, state::text FROM {t}").format(
                k=sql.Identifier(kind.key), t=sql.Identifier(kind.table)
            )
        ).fetchall()
    }
    return {k: joined(k, kind, base.get(k), deltas.get(k, [])) for k in {*base, *deltas}}
