"""Renaming an erased human's ids to their tokens where the projection stores them.

The purge (:func:`tenure.projection.erasure.purge`, docs/design/erasure.md) calls these in
its own transaction: raw states rewritten in place (deltas and compacted rows), the
members' person states moved to their token keys, id columns renamed (rows the rename would
duplicate deleted), event payloads rewritten (:data:`PAYLOAD_COLUMNS`: tables added later
that hold event payloads are listed there) and device rows redacted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from psycopg import sql

from tenure.domain.erasure import ERASED
from tenure.domain.pseudonymity import (
    is_token,
    person_ids_in_state,
    rename_person_state,
)
from tenure.storage.connection import Conn
from tenure.storage.raw_states import PERSONS, DeltaRows, RawTable, S, append_deltas, delta_line


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


def rename_deltas(
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


def locked_compacted(conn: Conn, kind: RawTable[S], keys: list[str]) -> dict[str, S]:
    """The compacted states of ``keys`` that have a row, locked for update."""
    rows = conn.execute(
        sql.SQL("SELECT {k}, state::text FROM {t} WHERE {k} = ANY(%b) FOR UPDATE").format(
            t=sql.Identifier(kind.table), k=sql.Identifier(kind.key)
        ),
        (keys,),
    ).fetchall()
    return {str(r[0]): kind.decode(str(r[1])) for r in rows}


def append_states(conn: Conn, kind: RawTable[S], states: Iterable[tuple[str, S]]) -> None:
    """Append states as deltas (joined with whatever the key already holds)."""
    folds: dict[str, S] = {}
    lines = []
    for key, state in states:
        lines.append(delta_line(key, kind.encode(state).decode()))
        folds[key] = state
    if lines:
        append_deltas(conn, DeltaRows(kind, folds, b"".join(lines)))


def rewrite_in_place(
    conn: Conn, kind: RawTable[S], keys: list[str], rename: Callable[[S], S]
) -> int:
    """Rename inside the deltas and compacted rows of keys that keep their key."""
    if not keys:
        return 0
    deltas = rename_deltas(conn, kind, keys, rename)
    key_of: Callable[[Any], str] = lambda s: str(getattr(s, kind.key))  # noqa: E731
    append_states(conn, kind, ((key_of(s), s) for s in deltas))
    rows = locked_compacted(conn, kind, keys)
    if rows:
        ordered = sorted(rows)
        conn.execute(
            sql.SQL(
                "UPDATE {t} SET state = x.s FROM unnest(%b::text[], %b::text[]) AS x(k, s)"
                " WHERE {t}.{k} = x.k"
            ).format(t=sql.Identifier(kind.table), k=sql.Identifier(kind.key)),
            (ordered, [kind.encode(rename(rows[k])).decode() for k in ordered]),
        )
    return len(keys)


def move_members(conn: Conn, members: list[str], mapping: Mapping[str, str]) -> frozenset[str]:
    """Move the members' raw person states to their token keys (as deltas); return the
    other person ids those states name."""
    named: set[str] = set()
    parts = []
    for state in rename_deltas(conn, PERSONS, members, lambda s: s):
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
    append_states(conn, PERSONS, ((s.person_id, s) for s in parts))
    return frozenset(p for p in named if not is_token(p)) - set(members)


def rename_column(
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


def rename_in_bytes(conn: Conn, where: PayloadColumn, mapping: Mapping[str, str]) -> None:
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


def rename_in_payloads(
    conn: Conn, mapping: Mapping[str, str], columns: Iterable[PayloadColumn]
) -> None:
    """Rename the ids of ``mapping`` in every payload column of ``columns``."""
    for where in columns:
        if where.kind == "id":
            rename_column(conn, where.table, where.column, mapping, None)
            continue
        if where.kind in ("bytes", "bytes-id"):
            rename_in_bytes(conn, where, mapping)
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


def redact_device_rows(conn: Conn, devices: list[str], members: list[str]) -> None:
    """In the ``devices`` rows of ``devices``, clear the user and mark the payer and the
    beneficiary erased where they are one of ``members`` (as ``device_view_of`` will say
    once the devices are derived again)."""
    for column, value in (("user_id", None), ("payer_id", ERASED), ("beneficiary_id", ERASED)):
        conn.execute(
            sql.SQL(
                "UPDATE devices SET {c} = %s WHERE device_id = ANY(%b) AND {c} = ANY(%b)"
            ).format(c=sql.Identifier(column)),
            (value, devices, members),
        )
