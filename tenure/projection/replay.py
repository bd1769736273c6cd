"""``tenure replay``: rebuild every lifecycle read model from the durable archive.

Reads every archived event, folds them with the pure domain core, derives the views as of
the watermark (or a given instant) and swaps fresh ``persons`` and ``devices`` tables in
atomically. Because the fold is order- and duplicate-insensitive, the result equals the
live projection of the same events. An archive row that is not an event, or carries a
value the projection cannot store, is dead-lettered (stage ``replay``) and the rest
replayed. Before reading, the live raw states are brought up to the archive
(:func:`~tenure.projection.catch_up.converge`), so the live projection's next derive never
moves a rebuilt row back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from tenure.analytics.live import churn_model
from tenure.domain.config import LifecycleConfig
from tenure.domain.device_view import derive_device
from tenure.domain.events import DomainEvent
from tenure.domain.view import DEFAULT_CONFIG
from tenure.domain.world import World, fold, views
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import poison_category
from tenure.projection.catch_up import converge, screen_archived
from tenure.projection.derive import QueuedKey
from tenure.projection.person_refs import PersonRefs
from tenure.projection.projector import key_dead_letter
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS, watermark
from tenure.storage import archive, person_pseudonyms
from tenure.storage.archive import ArchivedEvent
from tenure.storage.read_models import Checkpoint, device_row, person_row, rebuild

T = TypeVar("T")
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
    dead_lettered: int = 0
    """Archive rows (or read-model keys) that could not be replayed, dead-lettered."""


def _read_events(
    conn: psycopg.Connection[Any], total: int, progress: Progress
) -> tuple[list[DomainEvent], datetime | None, list[DeadLetter]]:
    """Every archived event, screened: rows that are not events or carry a value the
    projection cannot store become dead letters (the projection's catch-up parks the same
    ones), so one such row cannot stop a rebuild."""
    events: list[DomainEvent] = []
    dead: list[DeadLetter] = []
    latest: datetime | None = None
    n = 0
    for chunk in _archive_chunks(conn):
        kept, letters = screen_archived(chunk)
        dead += letters
        for _, event in kept:
            events.append(event)
            if latest is None or event.at > latest:
                latest = event.at
        n += len(chunk)
        progress("reading archive", n, total)
    progress("reading archive", n, total)
    return PersonRefs().resolve(conn, events).events, latest, dead  # tokens -> person ids


def _archive_chunks(
    conn: psycopg.Connection[Any], size: int = 5000
) -> Iterator[list[ArchivedEvent]]:
    return archive.read_chunks(conn, size)


def _rows(
    items: Sequence[T], row: Callable[[T], tuple[Any, ...]], key: Callable[[T], QueuedKey]
) -> tuple[list[tuple[Any, ...]], list[DeadLetter]]:
    """Build the read-model rows; a key whose row cannot be built (e.g. a sum over the
    64-bit range) becomes a dead letter instead of failing the rebuild."""
    rows: list[tuple[Any, ...]] = []
    dead: list[DeadLetter] = []
    for item in items:
        try:
            rows.append(row(item))
        except Exception as exc:
            category = poison_category(exc)
            if category is None:
                raise
            letter = key_dead_letter(key(item), category, f"{type(exc).__name__}: {exc}"[:500])
            dead.append(letter)
    return rows, dead


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
    """Rebuild ``persons`` and ``devices`` from the archive; return what was done.

    First the live raw states take every archived event (:func:`converge`), so the live
    projection's next derive of any person sees at least what this rebuild saw: rows it
    writes after the swap can never go back (late replays never regress a row). Then the
    rebuild holds the erasure lock shared throughout, so no purge runs between its read and
    its write (docs/design/erasure.md); the convergence runs before the lock is taken, as it
    may itself purge an erased human (which takes the lock exclusively).
    """
    with ConnectionPool(database_url, min_size=1, max_size=1) as pool:
        converge(pool)
    with psycopg.connect(database_url) as guard:
        person_pseudonyms.lock_session_shared(guard)
        return _replay(database_url, as_of, allowed_lateness, config, progress)


def _replay(
    database_url: str,
    as_of: datetime | None,
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    progress: Progress,
) -> ReplayResult:
    with psycopg.connect(database_url) as reader:
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot
        with reader.transaction():
            row = reader.execute(
                "SELECT count(*), coalesce(max(seq), 0) FROM event_archive"
            ).fetchone()
            total, last_seq = (int(row[0]), int(row[1])) if row else (0, 0)
            events, latest, dead = _read_events(reader, total, progress)
    progress("folding", 0, 1)
    world = fold(events)
    progress("folding", 1, 1)
    instant = as_of or watermark(latest, allowed_lateness)
    person_views = views(world, instant, config) if instant is not None else {}
    aliases = aliases_by_person(world)
    person_rows, dead_persons = _rows(
        sorted(person_views.items()),
        lambda item: person_row(item[1], aliases.get(item[0], ())),
        lambda item: ("person", item[0]),
    )
    device_rows, dead_devices = _rows(
        sorted(world.devices.items()),
        lambda item: device_row(derive_device(item[1])),
        lambda item: ("device", item[0]),
    )
    letters = [*dead, *dead_persons, *dead_devices]
    progress("writing", 0, len(person_rows) + len(device_rows))
    with psycopg.connect(database_url) as writer:
        sink = DeadLetterSink("replay")
        with writer.transaction():
            sink.store(writer, letters)
        sink.count(letters)
        n_persons, n_devices = rebuild(
            writer,
            person_rows,
            device_rows,
            Checkpoint("lifecycle", instant, last_seq, len(events)),
        )
        if instant is not None:  # hook: the churn model's counts from the same fold
            churn_model.rebuild(writer, churn_model.histories_of(world.persons, instant))
    progress("writing", n_persons + n_devices, n_persons + n_devices)
    return ReplayResult(len(events), last_seq, instant, n_persons, n_devices, len(letters))
