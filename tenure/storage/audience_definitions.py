"""Storing audience definitions: the shipped file, versions, retirement (migration 0021).

Every change of an audience is a new version row of ``audience_definitions``; the current
definition of a name is its highest version, and the audience is retired when that row's
``retired_at`` is set. Versions come from two sources:

* ``file``: the audiences shipped in the package (``tenure/domain/audiences.json``),
  seeded by :func:`seed_shipped` at every migrate (``tenure up``, ``tenure migrate``): a
  new version only when the file's document differs from the last version the file wrote,
  so an audience changed or retired through the API stays so until the file changes;
* ``api``: :func:`save` and :func:`retire`, behind ``PUT``/``DELETE /v1/audiences/{name}``.

Saving the current definition again writes nothing (a repeated ``PUT`` is idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from typing import Any, Final

from psycopg.types.json import Jsonb

from tenure.domain.audience import AudienceDefinition, AudienceError, parse_audience
from tenure.storage.connection import Conn

__all__ = [
    "SHIPPED_FILE",
    "StoredAudience",
    "current",
    "get",
    "retire",
    "save",
    "seed_shipped",
    "shipped_audiences",
]

SHIPPED_FILE: Final = "audiences.json"
"""The shipped audiences, a JSON list of documents in the ``tenure.domain`` package."""
_LOCK: Final = 0x7E5A0D
"""Advisory lock namespace: one writer of one audience's versions at a time."""
_COLUMNS: Final = "name, version, definition, source, created_at, retired_at"


@dataclass(frozen=True, slots=True)
class StoredAudience:
    """One stored version of an audience."""

    definition: AudienceDefinition
    source: str
    """``file`` or ``api``."""
    created_at: datetime
    retired_at: datetime | None

    @property
    def retired(self) -> bool:
        """Whether this (current) version is retired."""
        return self.retired_at is not None


def shipped_audiences() -> list[AudienceDefinition]:
    """The audiences shipped in the package, parsed (version 1 each; stored versions are
    assigned by :func:`seed_shipped`)."""
    text = resources.files("tenure.domain").joinpath(SHIPPED_FILE).read_text()
    documents = json.loads(text)
    if not isinstance(documents, list):
        raise AudienceError(f"{SHIPPED_FILE}: expected a list of audience documents")
    found = [parse_audience(document) for document in documents]
    names = [definition.name for definition in found]
    if len(set(names)) != len(names):
        raise AudienceError(f"{SHIPPED_FILE}: an audience name appears twice: {names}")
    return found


def _stored(row: tuple[Any, ...]) -> StoredAudience:
    document = dict(row[2])
    document["name"], document["version"] = row[0], row[1]
    return StoredAudience(parse_audience(document), str(row[3]), row[4], row[5])


def _same(left: AudienceDefinition, right: AudienceDefinition) -> bool:
    return replace(left, version=1) == replace(right, version=1)


def get(conn: Conn, name: str, version: int | None = None) -> StoredAudience | None:
    """One version of an audience (``None``: its current one), retired or not; ``None`` if
    there is no such audience or version."""
    if version is None:
        query = f"SELECT {_COLUMNS} FROM audience_definitions WHERE name = %s"
        row = conn.execute(query + " ORDER BY version DESC LIMIT 1", (name,)).fetchone()
    else:
        query = f"SELECT {_COLUMNS} FROM audience_definitions WHERE name = %s AND version = %s"
        row = conn.execute(query, (name, version)).fetchone()
    return None if row is None else _stored(row)


def current(conn: Conn, *, include_retired: bool = False) -> list[StoredAudience]:
    """The current version of every audience, by name; retired ones only if asked."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (name) {_COLUMNS} FROM audience_definitions"
        " ORDER BY name, version DESC"
    ).fetchall()
    found = [_stored(row) for row in rows]
    return [stored for stored in found if include_retired or not stored.retired]


def _lock(conn: Conn, name: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK, name))


def _insert(conn: Conn, definition: AudienceDefinition, source: str) -> StoredAudience:
    """Write ``definition`` as the next version of its name (the caller holds the lock)."""
    row = conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM audience_definitions WHERE name = %s",
        (definition.name,),
    ).fetchone()
    assert row is not None
    document = replace(definition, version=int(row[0])).to_document()
    row = conn.execute(
        "INSERT INTO audience_definitions (name, version, definition, source)"
        f" VALUES (%s, %s, %s, %s) RETURNING {_COLUMNS}",
        (definition.name, document["version"], Jsonb(document), source),
    ).fetchone()
    assert row is not None
    return _stored(row)


def save(conn: Conn, document: Mapping[str, Any]) -> tuple[StoredAudience, bool]:
    """Create an audience or give it a new version from an API document (its ``version``
    is ignored: versions are assigned here). Returns the current version and whether it
    was written: the same definition as the current, unretired one writes nothing.

    Raises :class:`~tenure.domain.audience.AudienceError` for an invalid document.
    """
    definition = parse_audience({**document, "version": 1})
    with conn.transaction():
        _lock(conn, definition.name)
        latest = get(conn, definition.name)
        if latest is not None and not latest.retired and _same(latest.definition, definition):
            return latest, False
        return _insert(conn, definition, "api"), True


def retire(conn: Conn, name: str) -> StoredAudience | None:
    """Retire an audience (its current version); ``None`` if there is no such audience.
    Retiring a retired audience changes nothing."""
    with conn.transaction():
        _lock(conn, name)
        row = conn.execute(
            "UPDATE audience_definitions SET retired_at = coalesce(retired_at, now())"
            " WHERE name = %s AND version = (SELECT max(version) FROM audience_definitions"
            f" WHERE name = %s) RETURNING {_COLUMNS}",
            (name, name),
        ).fetchone()
    return None if row is None else _stored(row)


def seed_shipped(
    conn: Conn, definitions: list[AudienceDefinition] | None = None
) -> list[StoredAudience]:
    """Store the shipped audiences (default: :func:`shipped_audiences`): a new ``file``
    version of each whose document differs from the last version the file wrote (or that
    has none). Idempotent; returns the versions written."""
    written: list[StoredAudience] = []
    for definition in shipped_audiences() if definitions is None else definitions:
        with conn.transaction():
            _lock(conn, definition.name)
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM audience_definitions WHERE name = %s AND source = 'file'"
                " ORDER BY version DESC LIMIT 1",
                (definition.name,),
            ).fetchone()
            if row is not None and _same(_stored(row).definition, definition):
                continue
            written.append(_insert(conn, definition, "file"))
    return written
