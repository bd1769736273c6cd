"""The projection's key graph in Postgres: identity links and which devices mention whom.

The raw states themselves are in :mod:`tenure.storage.raw_states`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tenure.domain.identity import IdentityGraph
from tenure.storage.connection import Conn


def add_mentions(conn: Conn, mentions: Iterable[tuple[str, str]]) -> None:
    """Record (person_id, device_id) pairs: the device's state mentions the person."""
    pairs = sorted(set(mentions))
    if pairs:
        conn.execute(
            "INSERT INTO device_mentions (person_id, device_id)"
            " SELECT * FROM unnest(%b::text[], %b::text[]) ON CONFLICT DO NOTHING",
            ([p for p, _ in pairs], [d for _, d in pairs]),
        )


def add_links(conn: Conn, links: Iterable[tuple[str, str]]) -> None:
    """Record identity links (both directions)."""
    pairs = sorted({(a, b) for x, y in links for a, b in ((x, y), (y, x)) if a != b})
    if pairs:
        conn.execute(
            "INSERT INTO identity_links (person_id, other_id)"
            " SELECT * FROM unnest(%b::text[], %b::text[]) ON CONFLICT DO NOTHING",
            ([a for a, _ in pairs], [b for _, b in pairs]),
        )


def components(conn: Conn, person_ids: Iterable[str]) -> tuple[frozenset[str], IdentityGraph]:
    """Every id linked (transitively) to ``person_ids``, and the links among them."""
    seeds = sorted(set(person_ids))
    if not seeds:
        return frozenset(), IdentityGraph()
    rows = conn.execute(
        "WITH RECURSIVE reach(id) AS ("
        "  SELECT unnest(%b::text[])"
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
        "SELECT DISTINCT device_id FROM device_mentions WHERE person_id = ANY(%b)", (keys,)
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def persons_mentioned_by(conn: Conn, device_ids: Iterable[str]) -> frozenset[str]:
    """Person ids mentioned by any of ``device_ids``."""
    keys = sorted(set(device_ids))
    if not keys:
        return frozenset()
    rows = conn.execute(
        "SELECT DISTINCT person_id FROM device_mentions WHERE device_id = ANY(%b)", (keys,)
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)
