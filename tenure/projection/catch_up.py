"""Re-applying the whole archive to the live projection (after a memory-only broker lost
records the projector had not consumed yet). Merges are idempotent, so events the
projection already holds change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tenure.domain.events import parse_event
from tenure.projection.apply import apply_events
from tenure.projection.erasure import purge
from tenure.projection.person_refs import PersonRefs

Progress = Callable[[int], None]


def catch_up_from_archive(
    pool: ConnectionPool,
    *,
    chunk: int = 5000,
    progress: Progress = lambda done: None,
) -> int:
    """Apply every archived event to the raw states, in archive order; return the count."""
    done = 0
    last_seq = 0
    refs = PersonRefs()
    while True:
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT seq, envelope, topic, kafka_partition FROM event_archive"
                " WHERE seq > %s ORDER BY seq LIMIT %s",
                (last_seq, chunk),
            ).fetchall()
            if not rows:
                return done
            events = [parse_event(r[1]) for r in rows]
            latest: dict[tuple[str, int], Any] = {}
            for r, event in zip(rows, events, strict=True):
                where = (str(r[2]), int(r[3]))
                if where not in latest or event.at > latest[where]:
                    latest[where] = event.at
            _apply(conn, refs, events, latest)
        last_seq = int(rows[-1][0])
        done += len(rows)
        progress(done)


def _apply(
    conn: psycopg.Connection[Any], refs: PersonRefs, events: list[Any], latest: dict[Any, Any]
) -> None:
    people = refs.resolve(conn, events)  # tokens -> person ids (docs/design/erasure.md)
    if people.erasures or people.linked:
        purged = purge(conn, refs.pseudonymiser(conn), people.erasures, linked=people.linked)
        refs.forget(purged.tokens)
    with conn.transaction():
        apply_events(conn, refs.hold(conn, people), latest)
