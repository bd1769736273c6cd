"""Writing raw states: append per-batch deltas, and compact them into the state rows.

:func:`delta_rows` folds and encodes a batch per key (CPU only, so it can run while the
previous batch is being written) and :func:`append_deltas` is the apply stage's only write
to the raw states: one ``COPY`` of every key's fold of the batch, with no read and no row
lock, so a batch costs the same
whatever the size of the states it touches, and workers applying batches about the same
keys never wait for each other.

:func:`compact` writes keys' joined states back as their compacted rows and deletes the
deltas joined, in the derive stage's transaction (which has just read and joined them for
its own use). See :mod:`tenure.projection.raw_cache` for how states are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic

from psycopg import sql

from tenure.projection.raw_cache import Conn, RawTable, S, StateCache, payload


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
    encode = kind.encode_delta
    documents = {key: encode(state).decode() for key, state in folds.items()}
    lines = b"".join(
        [_copy_text(key) + b"\t" + doc.replace("\\", "\\\\").encode() + b"\n"
         for key, doc in documents.items()]
    )  # fmt: skip
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
    documents = {k: kind.encode(states[k]) for k in keys}
    written = conn.execute(
        sql.SQL(
            "INSERT INTO {t} ({k}, state) SELECT key, value FROM jsonb_each(%s::jsonb)"
            " ORDER BY key ON CONFLICT ({k}) DO UPDATE SET state = EXCLUDED.state"
            " RETURNING {k}, xmin::text::bigint"
        ).format(k=sql.Identifier(kind.key), t=sql.Identifier(kind.table)),
        (payload(documents),),
    ).fetchall()
    conn.execute(
        sql.SQL("DELETE FROM {d} WHERE {k} = ANY(%b)").format(
            k=sql.Identifier(kind.key), d=sql.Identifier(kind.deltas)
        ),
        (keys,),
    )
    chars = {k: len(doc) for k, doc in documents.items()}  # UTF-8 bytes: at least the characters
    cache.put({str(k): int(x) for k, x in written}, states, chars)
