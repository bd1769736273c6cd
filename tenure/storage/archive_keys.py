"""Which keys the archived events name, kept beside the archive for ``tenure replay``'s plan
(migration 0028).

The plan (:mod:`tenure.projection.replay_plan`) needs, for every archived event, the keys it
touches: its record key, the devices and the person ids (or tokens) in its ``data``
(:func:`keys_of`). :func:`record` writes them when the rows are archived, in the same
transaction: one ``archive_key_names`` row per distinct (record key, kind, name), so a
device's thousands of uses under one record key are one row, and the latest event time per
topic and partition (``archive_latest``). The rows it covered are marked ``keys_named``; the
plan reads the payloads of the others (archived before the migration).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg

from tenure.domain.events import EVENT_TYPES, later
from tenure.domain.pseudonymity import PERSON_FIELDS
from tenure.storage.arrays import text_array

DEVICE = "d"
"""``archive_key_names.kind`` of a device id."""
PERSON = "p"
"""``archive_key_names.kind`` of a person id or token."""
PAGE = 20_000
"""Rows read at a time."""


def keys_of(body: Any) -> tuple[list[str], list[str]]:
    """``(device ids, person ids or tokens)`` a decoded envelope names, as its parse would
    read them (``str`` of the value), and any more found in the same fields."""
    devices: list[str] = []
    persons: list[str] = []
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return devices, persons
    for name in PERSON_FIELDS:
        value = data.get(name)
        if value is not None:
            persons.append(str(value))
    device = data.get("device_id")
    if device is not None:
        devices.append(str(device))
    items = data.get("items")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("device_id") is not None:
                devices.append(str(item["device_id"]))
    return devices, persons


def record(
    conn: psycopg.Connection[Any],
    named: Sequence[tuple[str, dict[str, Any]]],
    latest: Sequence[tuple[str, int, str, datetime]],
) -> None:
    """Record the keys of archived envelopes (``(record key, envelope)``) and their event
    times (``(topic, partition, type, time)``), in the caller's transaction."""
    names: set[tuple[str, str, str]] = set()
    for record_key, envelope in named:
        devices, persons = keys_of(envelope)
        names.update((record_key, DEVICE, d) for d in devices)
        names.update((record_key, PERSON, p) for p in persons)
    if names:
        rows = sorted(names)
        conn.execute(
            "INSERT INTO archive_key_names (record_key, kind, name)"
            ' SELECT k, c::"char", n FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(k, c, n)'
            " ON CONFLICT DO NOTHING",
            (
                text_array(r[0] for r in rows),
                text_array(r[1] for r in rows),
                text_array(r[2] for r in rows),
            ),
        )
    latest_by: dict[tuple[str, int], datetime] = {}
    for topic, partition, event_type, at in latest:
        if event_type in EVENT_TYPES:
            latest_by[(topic, partition)] = later(latest_by.get((topic, partition)), at)
    if latest_by:
        places = sorted(latest_by)  # in key order: two writers never wait on each other
        conn.execute(
            "INSERT INTO archive_latest AS t (topic, kafka_partition, latest_event_at)"
            " SELECT * FROM unnest(%s::text[], %s::int[], %s::timestamptz[])"
            " ON CONFLICT (topic, kafka_partition) DO UPDATE"
            " SET latest_event_at = greatest(t.latest_event_at, EXCLUDED.latest_event_at)",
            ([p[0] for p in places], [p[1] for p in places], [latest_by[p] for p in places]),
        )


def names(conn: psycopg.Connection[Any]) -> Iterator[list[tuple[str, str, str]]]:
    """Every recorded ``(record key, kind, name)``, :data:`PAGE` at a time, through a
    server-side cursor (in the caller's transaction)."""
    with conn.cursor(name="tenure_archive_key_names") as cur:
        cur.itersize = PAGE
        cur.execute("SELECT record_key, kind, name FROM archive_key_names")
        while rows := cur.fetchmany(PAGE):
            yield [(str(k), str(kind), str(n)) for k, kind, n in rows]


def record_key_events(
    conn: psycopg.Connection[Any], first_seq: int, last_seq: int
) -> Iterator[tuple[str, int, int]]:
    """``(record key, rows with recorded keys, rows without)`` of the archive rows
    ``first_seq..last_seq``, one scan, through a server-side cursor."""
    with conn.cursor(name="tenure_archive_key_events") as cur:
        cur.itersize = PAGE
        cur.execute(
            "SELECT record_key, count(*) FILTER (WHERE keys_named),"
            " count(*) FILTER (WHERE keys_named IS NULL) FROM event_archive"
            " WHERE seq BETWEEN %s AND %s GROUP BY record_key",
            (first_seq, last_seq),
        )
        while rows := cur.fetchmany(PAGE):
            yield from ((str(k), int(named), int(unnamed)) for k, named, unnamed in rows)


def latest(conn: psycopg.Connection[Any]) -> datetime | None:
    """The latest recorded event time of a known type."""
    row = conn.execute("SELECT max(latest_event_at) FROM archive_latest").fetchone()
    return None if row is None else row[0]
