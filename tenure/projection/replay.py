"""``tenure replay``: rebuild every lifecycle read model from the durable archive.

Reads every archived event, folds them with the pure domain core, derives the views as of
the watermark (or a given instant) and swaps fresh ``persons`` and ``devices`` tables in
atomically. Because the fold is order- and duplicate-insensitive, the result equals the
live projection of the same events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tenure.analytics.live import churn_model
from tenure.domain.config import LifecycleConfig
from tenure.domain.device_view import derive_device
from tenure.domain.events import DomainEvent, parse_event
from tenure.domain.view import DEFAULT_CONFIG
from tenure.domain.world import World, fold, views
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS, watermark
from tenure.storage.archive import read_envelopes
from tenure.storage.read_models import Checkpoint, device_row, person_row, rebuild

Progress = Callable[[str, int, int], None]
"""Called with (phase, done, total) as the replay advances."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay read and wrote."""

    events: int
    archive_seq: int
    as_of: datetime | None
    persons: int
    devices: int


def _read_events(
    conn: psycopg.Connection[Any], total: int, progress: Progress
) -> tuple[list[DomainEvent], datetime | None]:
    events: list[DomainEvent] = []
    latest: datetime | None = None
    for n, envelope in enumerate(read_envelopes(conn), start=1):
        event = parse_event(envelope)
        events.append(event)
        if latest is None or event.at > latest:
            latest = event.at
        if n % 5000 == 0:
            progress("reading archive", n, total)
    progress("reading archive", len(events), total)
    return events, latest


def aliases_by_person(world: World) -> dict[str, list[str]]:
    """Each canonical person id with the other ids of the same human."""
    members: dict[str, list[str]] = {}
    for member, canonical in world.identity.canonical_ids().items():
        if member != canonical:
            members.setdefault(canonical, []).append(member)
    return members


def replay(
    database_url: str,
    *,
    as_of: datetime | None = None,
    allowed_lateness: timedelta = DEFAULT_ALLOWED_LATENESS,
    config: LifecycleConfig = DEFAULT_CONFIG,
    progress: Progress = lambda phase, done, total: None,
) -> ReplayResult:
    """Rebuild ``persons`` and ``devices`` from the archive; return what was done."""
    with psycopg.connect(database_url) as reader:
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot
        with reader.transaction():
            row = reader.execute(
                "SELECT count(*), coalesce(max(seq), 0) FROM event_archive"
            ).fetchone()
            total, last_seq = (int(row[0]), int(row[1])) if row else (0, 0)
            events, latest = _read_events(reader, total, progress)
    progress("folding", 0, 1)
    world = fold(events)
    progress("folding", 1, 1)
    instant = as_of or watermark(latest, allowed_lateness)
    person_views = views(world, instant, config) if instant is not None else {}
    aliases = aliases_by_person(world)
    person_rows = [person_row(v, aliases.get(pid, ())) for pid, v in sorted(person_views.items())]
    device_rows = [device_row(derive_device(s)) for _, s in sorted(world.devices.items())]
    progress("writing", 0, len(person_rows) + len(device_rows))
    with psycopg.connect(database_url) as writer:
        n_persons, n_devices = rebuild(
            writer,
            person_rows,
            device_rows,
            Checkpoint("lifecycle", instant, last_seq, len(events)),
        )
        if instant is not None:  # hook: the churn model's counts from the same fold
            churn_model.rebuild(writer, churn_model.histories_of(world.persons, instant))
    progress("writing", n_persons + n_devices, n_persons + n_devices)
    return ReplayResult(len(events), last_seq, instant, n_persons, n_devices)
