"""Raw states in Postgres: a compacted row per key joined with a log of per-batch deltas.

A key's raw state (a join-semilattice) is stored in two parts: its *compacted* row
(``raw_device_states`` / ``raw_person_states``) and any number of *delta* rows
(``raw_device_deltas`` / ``raw_person_deltas``), each the fold of one batch's facts about the
key. The state is their join, so the apply stage appends a batch's deltas without reading
or locking anything, and compaction, which folds deltas into the compacted rows and deletes
them in one transaction, never changes what a reader sees.

Writing: :func:`delta_rows` folds and encodes a batch per key (CPU only, so it can run while
the previous batch is being written) and :func:`append_deltas` is the apply stage's only
write to the raw states: one ``COPY`` of every key's fold of the batch, with no read and no
row lock, so a batch costs the same whatever the size of the states it touches, and workers
applying batches about the same keys never wait for each other. :func:`compact` writes keys'
joined states back as their compacted rows and deletes the deltas joined, in the derive
stage's transaction (which has just read and joined them for its own use).

Reading: decoded compacted states are cached in process (:mod:`tenure.storage.state_cache`),
each tagged with its row's ``xmin`` (the id of the transaction that last wrote it): a cached
state is used only while the row still carries that ``xmin``, so a compaction by another
worker or a rolled back write is always seen. Deltas are small and always decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from psycopg import sql

from tenure.domain.device import DeviceState, fold_device_events, join_devices
from tenure.domain.person import PersonState, join_persons
from tenure.domain.state_codec import (
    decode_device_state,
    decode_person_state,
    encode_device_delta,
    encode_person_state,
)
from tenure.storage.connection import Conn
from tenure.storage.state_cache import StateCache

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
    """Bytes ``decode`` reads back exactly, as fast as possible (delta and compacted rows:
    Postgres keeps them as text, migration 0029, and they are only ever decoded, so they
    need not be canonical)."""
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
    decode_person_state,
    join_persons,
    join_persons,
)


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
        states[key] = state
    if dropped:
        again = sql.SQL(
            "SELECT {k}, xmin::text::bigint, state::text FROM {t} WHERE {k} = ANY(%b)"
        ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table))
        for key, xmin, text in conn.execute(again, (dropped,)).fetchall():
            states[key], decoded[key], chars[key] = kind.decode(text), xmin, len(text)
    cache.count_decoded(len(decoded))
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


@dataclass(frozen=True, slots=True)
class DeltaRows(Generic[S]):
    """One batch's deltas of one table, folded and encoded, ready to append."""

    kind: RawTable[S]
    folds: dict[str, S]
    """Each key's fold of the batch."""
    copy_text: bytes
    """The rows in ``COPY ... FROM STDIN`` text format."""


def delta_rows(
    kind: RawTable[S], parts: Mapping[str, list[Any]], cache: StateCache[S]
) -> DeltaRows[S]:
    """Fold each key's batch ``parts`` and encode the folds (CPU only, no database).

    The folds are remembered by their documents in ``cache`` (the derive stage reads them
    back; a document names its key, so remembering one that is never written is harmless).
    """
    folds = {key: kind.fold(key, items) for key, items in parts.items()}
    encode = kind.encode
    documents = {key: encode(state).decode() for key, state in folds.items()}
    lines = b"".join([delta_line(key, doc) for key, doc in documents.items()])
    cache.remember_deltas({doc: folds[key] for key, doc in documents.items()})
    return DeltaRows(kind, folds, lines)


def append_deltas(conn: Conn, rows: DeltaRows[S]) -> None:
    """Append the rows to the delta log (the apply stage's only write to raw states)."""
    if not rows.folds:
        return
    kind = rows.kind
    query = sql.SQL("COPY {d} ({k}, state) FROM STDIN").format(
        k=sql.Identifier(kind.key), d=sql.Identifier(kind.deltas)
    )
    with conn.cursor().copy(query) as copy:
        copy.write(rows.copy_text)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def delta_line(key: str, document: str) -> bytes:
    """One delta row (a key and its state document) in ``COPY ... FROM STDIN`` text format."""
    return _copy_text(key) + b"\t" + document.replace("\\", "\\\\").encode() + b"\n"


def _copy_text(value: str) -> bytes:
    """``value`` as a field of ``COPY ... FROM STDIN`` text format.

    State documents need only their backslashes doubled: canonical JSON has no raw
    control characters.
    """
    return value.translate(_COPY_ESCAPES).encode()


def compact(conn: Conn, kind: RawTable[S], cache: StateCache[S], states: Mapping[str, S]) -> None:
    """Write ``states`` (each key's compacted row joined with every delta of it that this
    transaction sees) as the compacted rows, and delete those deltas.

    Must run in a repeatable read (or serializable) transaction that read the states:
    deltas appended after its snapshot are invisible to it, so they are neither deleted nor
    lost, and a row another transaction compacted meanwhile fails this one with a
    serialization error (the caller retries) instead of being overwritten.
    """
    if not states:
        return
    keys = sorted(states)
    documents = {k: kind.encode(states[k]).decode() for k in keys}
    written = conn.execute(  # one statement (one round trip): the deltas go as the rows land
        sql.SQL(
            "WITH compacted AS (DELETE FROM {d} WHERE {k} = ANY(%b))"
            " INSERT INTO {t} ({k}, state) SELECT * FROM unnest(%b::text[], %b::text[])"
            " ON CONFLICT ({k}) DO UPDATE SET state = EXCLUDED.state"
            " RETURNING {k}, xmin::text::bigint"
        ).format(
            k=sql.Identifier(kind.key), t=sql.Identifier(kind.table), d=sql.Identifier(kind.deltas)
        ),
        (keys, keys, list(documents.values())),
    ).fetchall()
    chars = {k: len(doc) for k, doc in documents.items()}  # UTF-8 bytes: at least the characters
    cache.put({str(k): int(x) for k, x in written}, states, chars)
