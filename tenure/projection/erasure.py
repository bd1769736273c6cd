"""The purge: an erased human's ids become their tokens everywhere the projection stored them.

Runs when a batch erases a person id the vault still resolves, in its own transaction
before that batch is applied (docs/design/erasure.md). It takes the erasure lock
exclusively, clears the vault rows of every id of the human, and renames each id to its
token in the raw states (device deltas and rows mentioning it, the human's own states,
moved to the token keys, and the states of everyone they name), the key graph, the derive
queue, the transitions outbox and the survival bookkeeping; it deletes the human's read-model
rows and writes ``~erased`` (users: none) for them in device rows. Renaming commutes with
the fold, so the projection then equals the fold of the archive as it decodes after the
erasure.

Tables added later that hold event payloads are listed in :data:`PAYLOAD_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from psycopg import sql

from tenure.domain.erasure import ERASED
from tenure.domain.person import erased_person
from tenure.domain.pseudonymity import (
    is_token,
    person_ids_in_state,
    rename_device_state,
    rename_person_state,
)
from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.projection import raw_store
from tenure.projection.raw_cache import DEVICES, PERSONS, RawTable, S
from tenure.projection.raw_log import DeltaRows, append_deltas
from tenure.storage import audience_members, person_changes, person_pseudonyms
from tenure.storage.connection import Conn

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True, slots=True)
class PayloadColumn:
    """A column in which an erased id must be replaced: ``jsonb`` or ``text`` holding JSON
    (string values equal to the id), ``bytes`` (bytea holding a JSON document or any
    bytes: every JSON string equal to the id), ``id`` (the whole text value is one id, e.g.
    a key) or ``bytes-id`` (the whole bytea value is one id in UTF-8)."""

    table: str
    column: str
    kind: Literal["jsonb", "text", "bytes", "id", "bytes-id"] = "jsonb"


PAYLOAD_COLUMNS: tuple[PayloadColumn, ...] = (
    PayloadColumn("dead_letters", "envelope"),
    PayloadColumn("dead_letters", "payload", "bytes"),
    PayloadColumn("dead_letters", "record_key", "bytes-id"),
)
"""Payload columns the purge rewrites: the dead letters (migration 0008) keep the original
record (``payload``, and ``envelope`` when it is JSON) and its key."""


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a purge renamed."""

    tokens: Mapping[str, str]
    """Each erased person id and its token."""
    devices: int
    persons: int
    """Other people's raw states rewritten (gift and referral counterparts)."""


def _rename_deltas(
    conn: Conn, kind: RawTable[S], keys: list[str], rename: Callable[[S], S]
) -> list[S]:
    """Rewrite every delta of ``keys`` through ``rename`` (keys may change); return the
    renamed states. Deltas are deleted and read in one statement, so a concurrent
    compaction either committed before (its row is then read by :func:`_rename_rows`) or
    fails on the deleted rows and retries."""
    if not keys:
        return []
    rows = conn.execute(
        sql.SQL("DELETE FROM {d} WHERE {k} = ANY(%b) RETURNING state").format(
            d=sql.Identifier(kind.deltas), k=sql.Identifier(kind.key)
        ),
        (keys,),
    ).fetchall()
    return [rename(kind.decode(str(r[0]))) for r in rows]


def _compacted(conn: Conn, kind: RawTable[S], keys: list[str]) -> dict[str, S]:
    rows = conn.execute(
        sql.SQL("SELECT {k}, state::text FROM {t} WHERE {k} = ANY(%b) FOR UPDATE").format(
            t=sql.Identifier(kind.table), k=sql.Identifier(kind.key)
        ),
        (keys,),
    ).fetchall()
    return {str(r[0]): kind.decode(str(r[1])) for r in rows}


def _append(conn: Conn, kind: RawTable[S], states: Iterable[tuple[str, S]]) -> None:
    """Append states as deltas (joined with whatever the key already holds)."""
    folds: dict[str, S] = {}
    lines = []
    for key, state in states:
        doc = kind.encode_delta(state).decode().replace("\\", "\\\\")
        lines.append(key.translate(_COPY_ESCAPES).encode() + b"\t" + doc.encode() + b"\n")
        folds[key] = state
    if lines:
        append_deltas(conn, DeltaRows(kind, folds, b"".join(lines)))


def _rewrite_in_place(
    conn: Conn, kind: RawTable[S], keys: list[str], rename: Callable[[S], S]
) -> int:
    """Rename inside the deltas and compacted rows of keys that keep their key."""
    if not keys:
        return 0
    deltas = _rename_deltas(conn, kind, keys, rename)
    key_of: Callable[[Any], str] = lambda s: str(getattr(s, kind.key))  # noqa: E731
    _append(conn, kind, ((key_of(s), s) for s in deltas))
    rows = _compacted(conn, kind, keys)
    if rows:
        ordered = sorted(rows)
        conn.execute(
            sql.SQL(
                "UPDATE {t} SET state = x.s::jsonb FROM unnest(%b::text[], %b::text[]) AS x(k, s)"
                " WHERE {t}.{k} = x.k"
            ).format(t=sql.Identifier(kind.table), k=sql.Identifier(kind.key)),
            (ordered, [kind.encode(rename(rows[k])).decode() for k in ordered]),
        )
    return len(keys)


def _move_members(conn: Conn, members: list[str], mapping: Mapping[str, str]) -> frozenset[str]:
    """Move the members' raw person states to their token keys (as deltas); return the
    other person ids those states name."""
    named: set[str] = set()
    parts = []
    for state in _rename_deltas(conn, PERSONS, members, lambda s: s):
        named |= person_ids_in_state(state)
        parts.append(rename_person_state(state, mapping))
    rows = conn.execute(
        "DELETE FROM raw_person_states WHERE person_id = ANY(%b) RETURNING state::text",
        (members,),
    ).fetchall()
    for (doc,) in rows:
        state = PERSONS.decode(str(doc))
        named |= person_ids_in_state(state)
        parts.append(rename_person_state(state, mapping))
    _append(conn, PERSONS, ((s.person_id, s) for s in parts))
    return frozenset(p for p in named if not is_token(p)) - set(members)


def _rename_column(
    conn: Conn,
    table: str,
    column: str,
    mapping: Mapping[str, str],
    unique_with: tuple[str, ...] | None,
) -> None:
    """``UPDATE table SET column = token``; rows the rename would duplicate (same token and
    ``unique_with`` columns) are deleted instead."""
    old, new = sorted(mapping), [mapping[k] for k in sorted(mapping)]
    t, c = sql.Identifier(table), sql.Identifier(column)
    if unique_with is not None:
        same = sql.SQL("").join(
            sql.SQL(" AND e.{x} = {t}.{x}").format(x=sql.Identifier(x), t=t) for x in unique_with
        )
        conn.execute(
            sql.SQL(
                "DELETE FROM {t} USING unnest(%b::text[], %b::text[]) AS m(old, new)"
                " WHERE {t}.{c} = m.old AND EXISTS (SELECT 1 FROM {t} e WHERE e.{c} = m.new{s})"
            ).format(t=t, c=c, s=same),
            (old, new),
        )
    conn.execute(
        sql.SQL(
            "UPDATE {t} SET {c} = m.new FROM unnest(%b::text[], %b::text[]) AS m(old, new)"
            " WHERE {t}.{c} = m.old"
        ).format(t=t, c=c),
        (old, new),
    )


def _rename_in_bytes(conn: Conn, where: PayloadColumn, mapping: Mapping[str, str]) -> None:
    """Rename in a bytea column, row by row (dead letters are few): the JSON string of an id
    (``bytes``) or the whole value (``bytes-id``)."""
    t, c = sql.Identifier(where.table), sql.Identifier(where.column)
    for old, new in sorted(mapping.items()):
        if where.kind == "bytes-id":
            conn.execute(
                sql.SQL("UPDATE {t} SET {c} = %s WHERE {c} = %s").format(t=t, c=c),
                (new.encode(), old.encode()),
            )
            continue
        needle, token = orjson.dumps(old), orjson.dumps(new)
        rows = conn.execute(
            sql.SQL("SELECT ctid, {c} FROM {t} WHERE position(%s::bytea in {c}) > 0").format(
                t=t, c=c
            ),
            (needle,),
        ).fetchall()
        for ctid, value in rows:
            conn.execute(
                sql.SQL("UPDATE {t} SET {c} = %s WHERE ctid = %s").format(t=t, c=c),
                (bytes(value).replace(needle, token), ctid),
            )


def _rename_in_payloads(
    conn: Conn, mapping: Mapping[str, str], columns: Iterable[PayloadColumn]
) -> None:
    for where in columns:
        if where.kind == "id":
            _rename_column(conn, where.table, where.column, mapping, None)
            continue
        if where.kind in ("bytes", "bytes-id"):
            _rename_in_bytes(conn, where, mapping)
            continue
        t, c = sql.Identifier(where.table), sql.Identifier(where.column)
        text = sql.SQL("{c}::text").format(c=c) if where.kind == "jsonb" else c
        cast = sql.SQL("::jsonb") if where.kind == "jsonb" else sql.SQL("")
        for old, new in sorted(mapping.items()):
            needle, token = orjson.dumps(old).decode(), orjson.dumps(new).decode()
            conn.execute(
                sql.SQL(
                    "UPDATE {t} SET {c} = replace({x}, %s, %s){cast} WHERE strpos({x}, %s) > 0"
                ).format(t=t, c=c, x=text, cast=cast),
                (needle, token, needle),
            )


def purge(
    conn: Conn,
    pseudonymiser: Pseudonymiser,
    erasures: Mapping[str, datetime],
    payload_columns: Iterable[PayloadColumn] | None = None,
    *,
    linked: Mapping[str, datetime] | None = None,
) -> PurgeResult:
    """Erase the humans of ``erasures`` (person id -> erasure time; their tokens get the
    erasure's tombstone) and of ``linked`` (ids linked to an erased token: the domain erases
    them with it) from the projection's storage, in one transaction of its own; see the
    module doc. ``payload_columns`` defaults to :data:`PAYLOAD_COLUMNS` (read at call time)."""
    linked = linked or {}
    with conn.transaction():
        person_pseudonyms.hold_exclusive(conn)
        human, _ = raw_store.components(conn, [*erasures, *linked])
        members = sorted(p for p in human if not is_token(p))
        mapping = {m: pseudonymiser.token(m) for m in members}
        if not mapping:
            return PurgeResult({}, 0, 0)
        at = min([*erasures.values(), *linked.values()])
        person_pseudonyms.mark_erased(conn, {t: at for t in mapping.values()})
        devices = sorted(raw_store.devices_mentioning(conn, members))
        others = sorted(_move_members(conn, members, mapping))
        # The erasure itself, so the tokens are never live, even if the batch that carries
        # the erasure is only applied after a restart (it then adds the same tombstone).
        _append(
            conn,
            PERSONS,
            (
                (mapping[p], erased_person(mapping[p], t))
                for p, t in sorted(erasures.items())
                if p in mapping
            ),
        )
        _rewrite_in_place(conn, PERSONS, others, lambda s: rename_person_state(s, mapping))
        _rewrite_in_place(conn, DEVICES, devices, lambda s: rename_device_state(s, mapping))
        _rename_column(conn, "device_mentions", "person_id", mapping, ("device_id",))
        _rename_column(conn, "identity_links", "person_id", mapping, ("other_id",))
        _rename_column(conn, "identity_links", "other_id", mapping, ("person_id",))
        _rename_column(conn, "dirty_persons", "person_id", mapping, None)
        _rename_column(conn, "lifecycle_transitions", "person_id", mapping, None)
        conn.execute("DELETE FROM persons WHERE person_id = ANY(%b)", (members,))
        person_changes.erase(conn, mapping)  # followers see the erasure by token
        audience_members.erase(conn, mapping)  # the audience stage exits them by token
        _rename_column(conn, "survival_dirty", "person_id", mapping, ())
        _rename_column(conn, "survival_contributions", "person_id", mapping, ())
        _rename_column(conn, "churn_gap_contributions", "person_id", mapping, ())
        _rename_column(conn, "churn_pending", "person_id", mapping, ())
        for column, value in (("user_id", None), ("payer_id", ERASED), ("beneficiary_id", ERASED)):
            conn.execute(  # as derive_device will say once the devices are derived again
                sql.SQL(
                    "UPDATE devices SET {c} = %s WHERE device_id = ANY(%b) AND {c} = ANY(%b)"
                ).format(c=sql.Identifier(column)),
                (value, devices, members),
            )
        _rename_in_payloads(
            conn, mapping, PAYLOAD_COLUMNS if payload_columns is None else payload_columns
        )
        queued = sorted({*mapping.values(), *others})
        conn.execute("INSERT INTO dirty_persons SELECT unnest(%b::text[])", (queued,))
        if devices:
            conn.execute("INSERT INTO dirty_devices SELECT unnest(%b::text[])", (devices,))
        return PurgeResult(mapping, len(devices), len(others))
