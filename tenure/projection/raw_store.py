"""Raw projection state in Postgres: load, lock and save per-key semilattice states.

Raw states are plain merges of events per device and per person id (see
:mod:`tenure.domain.neighbourhood`). Writers lock the rows they merge into (in key order,
after inserting placeholders for new keys) so that concurrent workers never lose a merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tenure.domain.codec import (
    device_state_from_json,
    device_state_to_json,
    person_state_from_json,
    person_state_to_json,
)
from tenure.domain.device import DeviceState
from tenure.domain.identity import IdentityGraph
from tenure.domain.person import PersonState

Conn = psycopg.Connection[Any]


def lock_devices(conn: Conn, device_ids: Iterable[str]) -> dict[str, DeviceState]:
    """Lock (creating empty rows where needed) and load the raw states of ``device_ids``."""
    keys = sorted(set(device_ids))
    if not keys:
        return {}
    empty = [Jsonb(device_state_to_json(DeviceState(k))) for k in keys]
    conn.execute(
        "INSERT INTO raw_device_states (device_id, state)"
        " SELECT * FROM unnest(%s::text[], %s::jsonb[]) ON CONFLICT DO NOTHING",
        (keys, empty),
    )
    rows = conn.execute(
        "SELECT device_id, state FROM raw_device_states WHERE device_id = ANY(%s)"
        " ORDER BY device_id FOR UPDATE",
        (keys,),
    ).fetchall()
    return {str(r[0]): device_state_from_json(r[1]) for r in rows}


def lock_persons(conn: Conn, person_ids: Iterable[str]) -> dict[str, PersonState]:
    """Lock (creating empty rows where needed) and load the raw states of ``person_ids``."""
    keys = sorted(set(person_ids))
    if not keys:
        return {}
    empty = [Jsonb(person_state_to_json(PersonState(k))) for k in keys]
    conn.execute(
        "INSERT INTO raw_person_states (person_id, state)"
        " SELECT * FROM unnest(%s::text[], %s::jsonb[]) ON CONFLICT DO NOTHING",
        (keys, empty),
    )
    rows = conn.execute(
        "SELECT person_id, state FROM raw_person_states WHERE person_id = ANY(%s)"
        " ORDER BY person_id FOR UPDATE",
        (keys,),
    ).fetchall()
    return {str(r[0]): person_state_from_json(r[1]) for r in rows}


def save_devices(conn: Conn, states: Mapping[str, DeviceState]) -> None:
    """Write raw device states (rows must exist and be locked by this transaction)."""
    if states:
        keys = sorted(states)
        conn.execute(
            "UPDATE raw_device_states r SET state = u.state"
            " FROM unnest(%s::text[], %s::jsonb[]) AS u(device_id, state)"
            " WHERE r.device_id = u.device_id",
            (keys, [Jsonb(device_state_to_json(states[k])) for k in keys]),
        )


def save_persons(conn: Conn, states: Mapping[str, PersonState]) -> None:
    """Write raw person states (rows must exist and be locked by this transaction)."""
    if states:
        keys = sorted(states)
        conn.execute(
            "UPDATE raw_person_states r SET state = u.state"
            " FROM unnest(%s::text[], %s::jsonb[]) AS u(person_id, state)"
            " WHERE r.person_id = u.person_id",
            (keys, [Jsonb(person_state_to_json(states[k])) for k in keys]),
        )


def add_mentions(conn: Conn, mentions: Iterable[tuple[str, str]]) -> None:
    """Record (person_id, device_id) pairs: the device's state mentions the person."""
    pairs = sorted(set(mentions))
    if pairs:
        conn.execute(
            "INSERT INTO device_mentions (person_id, device_id)"
            " SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING",
            ([p for p, _ in pairs], [d for _, d in pairs]),
        )


def add_links(conn: Conn, links: Iterable[tuple[str, str]]) -> None:
    """Record identity links (both directions)."""
    pairs = sorted({(a, b) for x, y in links for a, b in ((x, y), (y, x)) if a != b})
    if pairs:
        conn.execute(
            "INSERT INTO identity_links (person_id, other_id)"
            " SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING",
            ([a for a, _ in pairs], [b for _, b in pairs]),
        )


def components(conn: Conn, person_ids: Iterable[str]) -> tuple[frozenset[str], IdentityGraph]:
    """Every id linked (transitively) to ``person_ids``, and the links among them."""
    seeds = sorted(set(person_ids))
    if not seeds:
        return frozenset(), IdentityGraph()
    rows = conn.execute(
        "WITH RECURSIVE reach(id) AS ("
        "  SELECT unnest(%s::text[])"
        "  UNION SELECT l.other_id FROM identity_links l JOIN reach r ON l.person_id = r.id"
        ") SELECT l.person_id, l.other_id FROM identity_links l"
        "  WHERE l.person_id IN (SELECT id FROM reach) AND l.person_id < l.other_id",
        (seeds,),
    ).fetchall()
    graph = IdentityGraph()
    ids = set(seeds)
    for a, b in rows:
        graph = graph.with_link(str(a), str(b))
        ids.update((str(a), str(b)))
    return frozenset(ids), graph


def devices_mentioning(conn: Conn, person_ids: Iterable[str]) -> frozenset[str]:
    """Ids of devices whose state mentions any of ``person_ids``."""
    keys = sorted(set(person_ids))
    if not keys:
        return frozenset()
    rows = conn.execute(
        "SELECT DISTINCT device_id FROM device_mentions WHERE person_id = ANY(%s)", (keys,)
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def persons_mentioned_by(conn: Conn, device_ids: Iterable[str]) -> frozenset[str]:
    """Person ids mentioned by any of ``device_ids``."""
    keys = sorted(set(device_ids))
    if not keys:
        return frozenset()
    rows = conn.execute(
        "SELECT DISTINCT person_id FROM device_mentions WHERE device_id = ANY(%s)", (keys,)
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def read_devices(conn: Conn, device_ids: Sequence[str]) -> dict[str, DeviceState]:
    """Raw device states (no lock) of the given ids that exist."""
    rows = conn.execute(
        "SELECT device_id, state FROM raw_device_states WHERE device_id = ANY(%s)",
        (sorted(set(device_ids)),),
    ).fetchall()
    return {str(r[0]): device_state_from_json(r[1]) for r in rows}


def read_persons(conn: Conn, person_ids: Sequence[str]) -> dict[str, PersonState]:
    """Raw person states (no lock) of the given ids that exist."""
    rows = conn.execute(
        "SELECT person_id, state FROM raw_person_states WHERE person_id = ANY(%s)",
        (sorted(set(person_ids)),),
    ).fetchall()
    return {str(r[0]): person_state_from_json(r[1]) for r in rows}
