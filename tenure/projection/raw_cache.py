"""Merging a batch into the raw states in Postgres, with an in-process cache of states.

Each raw state row is locked (``FOR UPDATE``, in key order) before it is merged into, so
concurrent workers never lose a merge, but the state itself is read only when this process
does not already hold the version the row has: the row's ``xmin`` (the id of the
transaction that last wrote it) tags each cached state. A cached state is used only if the
row still carries the ``xmin`` it was cached with, so a write by another worker, a rolled
back write of this one or a replay that swapped the tables in is always seen. New keys are
inserted without a prior read (``ON CONFLICT DO NOTHING``; a key another worker inserted
meanwhile is then locked, read and merged like any other). All states of a table go to
Postgres as one ``jsonb`` object per statement (``jsonb_each``), so a batch costs a handful
of statements whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
import psycopg
from psycopg import sql

from tenure.domain.codec import (
    decode_device_state,
    decode_person_state,
    encode_device_state,
    encode_person_state,
)
from tenure.domain.device import DeviceState, fold_device_events
from tenure.domain.person import PersonState, join_persons

Conn = psycopg.Connection[Any]
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class RawTable(Generic[S]):
    """How one kind of raw state is stored, encoded and joined."""

    table: str
    key: str
    encode: Callable[[S], bytes]
    decode: Callable[[bytes | str], S]
    fold: Callable[[str, S | None, list[Any]], S]
    """Join a key's batch parts into its state (``None``: a new key)."""


def _fold_person(person_id: str, base: PersonState | None, parts: list[Any]) -> PersonState:
    return join_persons(person_id, parts if base is None else [base, *parts])


DEVICES: RawTable[DeviceState] = RawTable(
    "raw_device_states", "device_id", encode_device_state, decode_device_state, fold_device_events
)
PERSONS: RawTable[PersonState] = RawTable(
    "raw_person_states", "person_id", encode_person_state, decode_person_state, _fold_person
)


@dataclass(slots=True)
class StateCache(Generic[S]):
    """States this process wrote or read, each with the ``xmin`` of its row then."""

    entries: dict[str, tuple[int, S]] = field(default_factory=dict)
    limit: int = 500_000
    hits: int = 0
    misses: int = 0

    def fresh(self, key: str, xmin: int) -> S | None:
        """The cached state of ``key`` if its row still has ``xmin``, else ``None``."""
        entry = self.entries.get(key)
        if entry is not None and entry[0] == xmin:
            self.hits += 1
            return entry[1]
        self.misses += 1
        return None

    def put(self, versions: Mapping[str, int], states: Mapping[str, S]) -> None:
        """Remember ``states`` under the row versions the database returned."""
        if len(self.entries) + len(versions) > self.limit:
            self.entries.clear()  # bounded memory; misses are only slower, never wrong
        for key, xmin in versions.items():
            self.entries[key] = (xmin, states[key])

    def clear(self) -> None:
        """Forget everything (partitions revoked, or to bound memory)."""
        self.entries.clear()


@dataclass(frozen=True, slots=True)
class Merged(Generic[S]):
    """What merging a batch into one table changed: new states, and the states before."""

    changed: dict[str, S]
    before: dict[str, S | None]


def _payload(docs: Mapping[str, bytes]) -> str:
    """One JSON object ``{key: state document}`` built from already-encoded documents."""
    parts = b",".join(orjson.dumps(key) + b":" + doc for key, doc in docs.items())
    return (b"{" + parts + b"}").decode()


def _versions(rows: Iterable[tuple[Any, ...]]) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in rows}


def lock_versions(conn: Conn, kind: RawTable[S], keys: list[str]) -> dict[str, int]:
    """Lock the existing rows of ``keys`` (in key order); their current ``xmin``."""
    if not keys:
        return {}
    query = sql.SQL(
        "SELECT {k}, xmin::text::bigint FROM {t} WHERE {k} = ANY(%s) ORDER BY {k} FOR UPDATE"
    ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table))
    return _versions(conn.execute(query, (keys,)).fetchall())


def read_states(conn: Conn, kind: RawTable[S], keys: list[str]) -> dict[str, S]:
    """Decode the stored states of ``keys`` (rows this transaction has locked)."""
    if not keys:
        return {}
    query = sql.SQL("SELECT {k}, state::text FROM {t} WHERE {k} = ANY(%s)").format(
        k=sql.Identifier(kind.key), t=sql.Identifier(kind.table)
    )
    return {str(r[0]): kind.decode(r[1]) for r in conn.execute(query, (keys,)).fetchall()}


def insert_states(conn: Conn, kind: RawTable[S], docs: Mapping[str, bytes]) -> dict[str, int]:
    """Insert rows for new keys; the versions of those inserted (others already existed)."""
    if not docs:
        return {}
    query = sql.SQL(
        "INSERT INTO {t} ({k}, state) SELECT key, value FROM jsonb_each(%s::jsonb)"
        " ORDER BY key ON CONFLICT DO NOTHING RETURNING {k}, xmin::text::bigint"
    ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table))
    return _versions(conn.execute(query, (_payload(docs),)).fetchall())


def update_states(conn: Conn, kind: RawTable[S], docs: Mapping[str, bytes]) -> dict[str, int]:
    """Overwrite the states of locked rows; their new versions."""
    if not docs:
        return {}
    query = sql.SQL(
        "UPDATE {t} r SET state = u.value FROM jsonb_each(%s::jsonb) AS u"
        " WHERE r.{k} = u.key RETURNING r.{k}, r.xmin::text::bigint"
    ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table))
    return _versions(conn.execute(query, (_payload(docs),)).fetchall())


def merge_batch(
    conn: Conn, kind: RawTable[S], cache: StateCache[S], parts: Mapping[str, list[Any]]
) -> Merged[S]:
    """Fold each key's batch parts into its stored state (in ``conn``'s transaction) and
    write what changed. Returns the changed states and their previous ones."""
    keys = sorted(parts)
    versions = lock_versions(conn, kind, keys)
    current: dict[str, S] = {}
    stale: list[str] = []
    for key, xmin in versions.items():
        cached = cache.fresh(key, xmin)
        if cached is None:
            stale.append(key)
        else:
            current[key] = cached
    current |= read_states(conn, kind, stale)
    cache.put({k: versions[k] for k in stale}, current)

    changed: dict[str, S] = {}
    before: dict[str, S | None] = {}
    fresh_keys = [k for k in keys if k not in versions]
    created = {k: kind.fold(k, None, parts[k]) for k in fresh_keys}
    inserted = insert_states(conn, kind, {k: kind.encode(s) for k, s in created.items()})
    for key in inserted:
        changed[key], before[key] = created[key], None
    raced = [k for k in fresh_keys if k not in inserted]  # another worker inserted it
    if raced:
        again = lock_versions(conn, kind, raced)
        current |= read_states(conn, kind, raced)
        versions = {**versions, **again}

    updates: dict[str, S] = {}
    for key in keys:
        if key in inserted:
            continue
        old = current[key]
        new = kind.fold(key, old, parts[key])
        if new is not old and new != old:
            updates[key], before[key] = new, old
    written = update_states(conn, kind, {k: kind.encode(s) for k, s in updates.items()})
    changed |= updates
    cache.put({**inserted, **written}, changed)
    return Merged(changed, before)


def read_cached(
    conn: Conn, kind: RawTable[S], cache: StateCache[S], keys: list[str]
) -> dict[str, S]:
    """The stored states of ``keys`` that exist (no lock), decoding only those the cache
    does not hold at the row's current version."""
    if not keys:
        return {}
    query = sql.SQL(
        "SELECT {k}, xmin::text::bigint, state::text FROM {t} WHERE {k} = ANY(%s)"
    ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table))
    states: dict[str, S] = {}
    decoded: dict[str, int] = {}
    for key, xmin, text in conn.execute(query, (keys,)).fetchall():
        state = cache.fresh(str(key), int(xmin))
        if state is None:
            state = kind.decode(text)
            decoded[str(key)] = int(xmin)
        states[str(key)] = state
    cache.put(decoded, states)
    return states
