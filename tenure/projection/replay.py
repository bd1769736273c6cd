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

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from tenure.analytics.return_time_filing import histories_of
from tenure.domain.config import LifecycleConfig
from tenure.domain.device_view import device_view_of
from tenure.domain.neighbourhood import RawWorld
from tenure.domain.person import PersonState
from tenure.domain.schedule import next_change_at
from tenure.domain.view import DEFAULT_CONFIG, person_view_at
from tenure.domain.world import World, assemble
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import poison_category
from tenure.projection.catch_up import converge
from tenure.projection.derive import QueuedKey
from tenure.projection.projector import key_dead_letter
from tenure.projection.replay_fold import (
    FEW_COLLECTIONS,
    FoldedRange,
    fold_documents,
    fold_in_workers,
    join_ranges,
)
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS, watermark
from tenure.storage import archive, churn_model, person_pseudonyms, snapshots
from tenure.storage.read_models import Checkpoint, device_row, rebuild, stored_person_row

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


def _rows(
    items: Iterable[T],
    row: Callable[[T], tuple[Any, ...]],
    key: Callable[[T], QueuedKey],
    dead: list[DeadLetter],
) -> Iterator[tuple[Any, ...]]:
    """The read-model rows, built as they are written; a key whose row cannot be built
    (e.g. a sum over the 64-bit range) becomes a dead letter (appended to ``dead``) instead
    of failing the rebuild."""
    for item in items:
        try:
            built = row(item)
        except Exception as exc:
            category = poison_category(exc)
            if category is None:
                raise
            letter = key_dead_letter(key(item), category, f"{type(exc).__name__}: {exc}"[:500])
            dead.append(letter)
            continue
        yield built


def _stored_person_row(
    state: PersonState, at: datetime, config: LifecycleConfig, aliases: Sequence[str]
) -> tuple[Any, ...]:
    """A stored ``persons`` row: the view's columns, then its schedule (``next_change_at``)."""
    view = person_view_at(state, at, config)
    return stored_person_row(view, aliases, next_change_at(state, view, config))


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
    workers: int = 1,
) -> ReplayResult:
    """Rebuild ``persons`` and ``devices`` from the archive; return what was done.

    First the live raw states take every archived event (:func:`converge`), so the live
    projection's next derive of any person sees at least what this rebuild saw: rows it
    writes after the swap can never go back (late replays never regress a row). Then the
    rebuild holds the erasure lock shared throughout, so no purge runs between its read and
    its write (docs/design/erasure.md); the convergence runs before the lock is taken, as it
    may itself purge an erased human (which takes the lock exclusively).

    ``workers``: processes that read and fold seq ranges of the archive (default one: the
    replaying process; more cost more CPU than they save on a 2-core machine, as each ships
    its raw states back, see docs/design/replay-cost.md).
    """
    with ConnectionPool(database_url, min_size=1, max_size=1) as pool:
        converge(pool)
    thresholds = gc.get_threshold()
    gc.set_threshold(*FEW_COLLECTIONS)
    try:
        with psycopg.connect(database_url) as guard:
            person_pseudonyms.lock_session_shared(guard)
            return _replay(database_url, as_of, allowed_lateness, config, progress, workers)
    finally:
        gc.set_threshold(*thresholds)


def _read_and_fold(
    database_url: str, workers: int, progress: Progress
) -> tuple[RawWorld, FoldedRange, int]:
    """The archive (one snapshot) folded into raw states: here, or by ``workers`` processes
    over seq ranges; with the ranges' totals and the last seq."""
    with psycopg.connect(database_url) as reader:
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot
        with reader.transaction():
            total, first_seq, last_seq = archive.bounds(reader)
            progress("reading archive", 0, total)
            if workers > 1 and total:
                snapshot = snapshots.export(reader)  # valid while this transaction is open
                parts = fold_in_workers(database_url, snapshot, first_seq, last_seq, workers)
            else:
                done = [0]

                def on_chunk(rows: int) -> None:
                    done[0] += rows
                    progress("reading archive", done[0], total)

                parts = [fold_documents(reader, first_seq, last_seq, on_chunk)]
    progress("reading archive", total, total)
    raw, totals = join_ranges(parts)
    return raw, totals, last_seq


def _replay(
    database_url: str,
    as_of: datetime | None,
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    progress: Progress,
    workers: int,
) -> ReplayResult:
    raw, totals, last_seq = _read_and_fold(database_url, workers, progress)
    progress("folding", 0, 1)
    world = assemble(raw.devices, raw.person_states, raw.identity)
    del raw
    progress("folding", 1, 1)
    instant = as_of or watermark(totals.latest, allowed_lateness)
    aliases = aliases_by_person(world)
    letters = list(totals.dead)
    at = instant or datetime.min  # no instant: no events, so no person rows
    humans = [(p, s) for p, s in sorted(world.persons.items()) if not s.erased and instant]
    person_rows = _rows(
        humans,
        lambda item: _stored_person_row(item[1], at, config, aliases.get(item[0], ())),
        lambda item: ("person", item[0]),
        letters,
    )
    device_rows = _rows(
        sorted(world.devices.items()),
        lambda item: device_row(device_view_of(item[1])),
        lambda item: ("device", item[0]),
        letters,
    )
    progress("writing", 0, len(world.persons) + len(world.devices))
    with psycopg.connect(database_url) as writer:
        n_persons, n_devices = rebuild(
            writer,
            person_rows,
            device_rows,
            Checkpoint("lifecycle", instant, last_seq, totals.events),
        )
        if instant is not None:  # hook: the churn model's counts from the same fold
            churn_model.rebuild(writer, histories_of(world.persons, instant))
        sink = DeadLetterSink("replay")
        with writer.transaction():
            sink.store(writer, letters)
        sink.count(letters)
    progress("writing", n_persons + n_devices, n_persons + n_devices)
    return ReplayResult(totals.events, last_seq, instant, n_persons, n_devices, len(letters))
