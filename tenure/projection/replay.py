"""``tenure replay``: rebuild every lifecycle read model from the durable archive.

Reads every archived event, folds them with the pure domain core, derives the views as of
the watermark (or a given instant) and swaps fresh ``persons`` and ``devices`` tables in
atomically. Because the fold is order- and duplicate-insensitive, the result equals the
live projection of the same events. An archive row that is not an event, or carries a
value the projection cannot store, is dead-lettered (stage ``replay``) and the rest
replayed. Before reading, the live raw states are brought up to the archive
(:func:`~tenure.projection.catch_up.converge`), so the live projection's next derive never
moves a rebuilt row back.

Memory: an archive larger than one part (``memory_mb``, ``TENURE_PROJECTOR_CACHE_MB``) is
planned (:mod:`tenure.projection.replay_plan`) and replayed part by part, each part a set
of whole components of independent persons: folded, assembled, derived and copied into the
staging tables before the next; one swap then merges them all
(:mod:`tenure.storage.read_models`).
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from tenure.analytics.return_times import ALL
from tenure.config import DEFAULT_PROJECTOR_CACHE_MB
from tenure.domain.activity import engagement_days
from tenure.domain.config import LifecycleConfig
from tenure.domain.device_view import device_view_of
from tenure.domain.neighbourhood import RawWorld
from tenure.domain.person import PersonState
from tenure.domain.schedule import next_change_at
from tenure.domain.view import DEFAULT_CONFIG, person_view_at
from tenure.domain.world import World, assemble
from tenure.errors import TenureError
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.isolation import poison_category
from tenure.projection.catch_up import converge
from tenure.projection.derive import QueuedKey, key_dead_letter
from tenure.projection.person_refs import PersonRefs
from tenure.projection.replay_fold import (
    CHUNK,
    FEW_COLLECTIONS,
    FoldedRange,
    fold_documents,
    fold_documents_chunk,
    fold_in_workers,
    join_ranges,
)
from tenure.projection.replay_plan import Plan, part_capacity, plan
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS, watermark
from tenure.storage import (
    archive,
    churn_model,
    person_pseudonyms,
    read_models,
    replay_engagement,
    snapshots,
)
from tenure.storage.read_models import Checkpoint, device_row, stored_person_row

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
    parts: int = 1
    """Parts of independent persons folded one after the other (``memory_mb``)."""


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
    memory_mb: float = DEFAULT_PROJECTOR_CACHE_MB,
) -> ReplayResult:
    """Rebuild ``persons`` and ``devices`` from the archive; return what was done.

    First the live raw states take every archived event (:func:`converge`), so the live
    projection's next derive of any person sees at least what this rebuild saw: rows it
    writes after the swap can never go back (late replays never regress a row). Then the
    rebuild holds the erasure lock shared throughout, so no purge runs between its read and
    its write (docs/design/erasure.md); the convergence runs before the lock is taken, as it
    may itself purge an erased human (which takes the lock exclusively).

    ``memory_mb`` (``TENURE_PROJECTOR_CACHE_MB``) bounds the states held at once: an archive
    larger than one part (:func:`~tenure.projection.replay_plan.part_capacity`) is planned
    (:mod:`tenure.projection.replay_plan`) and folded, assembled, derived and written one
    part of independent persons at a time.

    ``workers``: processes that read and fold seq ranges of an archive that fits one part
    (default one: the replaying process; more cost more CPU than they save on a 2-core
    machine, as each ships its raw states back, see docs/design/replay-cost.md).
    """
    with ConnectionPool(database_url, min_size=1, max_size=1) as pool:
        converge(pool)
    thresholds = gc.get_threshold()
    gc.set_threshold(*FEW_COLLECTIONS)
    try:
        with psycopg.connect(database_url) as guard:
            person_pseudonyms.lock_session_shared(guard)
            return _replay(
                database_url, as_of, allowed_lateness, config, progress, workers, memory_mb
            )
    finally:
        gc.set_threshold(*thresholds)


class _LatestMoved(TenureError):
    """The planned latest event time was not the fold's (an event of a known type with the
    latest time was dead-lettered): derive again at the fold's."""

    def __init__(self, latest: datetime | None) -> None:
        super().__init__(f"latest event time is {latest}")
        self.latest = latest


@dataclass(slots=True)
class _Totals:
    events: int = 0
    persons: int = 0
    devices: int = 0
    latest: datetime | None = None
    letters: list[DeadLetter] = field(default_factory=list)
    engagement: list[tuple[str, list[date]]] | None = None
    """The persons' engagement days, held here when the archive is one part (else staged
    in Postgres, :mod:`tenure.storage.replay_engagement`)."""


def _parts(
    reader: psycopg.Connection[Any],
    database_url: str,
    bounds: tuple[int, int, int],
    planned: Plan | None,
    workers: int,
    progress: Progress,
    refs: PersonRefs,
) -> Iterator[tuple[RawWorld, FoldedRange]]:
    """The archive (``reader``'s snapshot) folded into raw states, part by part: the whole
    archive at once without a plan (here, or by ``workers`` processes over seq ranges)."""
    total, first_seq, last_seq = bounds
    done = [0]

    def on_chunk(rows: int) -> None:
        done[0] += rows
        progress("reading archive", done[0], total)

    progress("reading archive", 0, total)
    if planned is None:
        if workers > 1 and total:
            snapshot = snapshots.export(reader)  # valid while this transaction is open
            ranges = fold_in_workers(database_url, snapshot, first_seq, last_seq, workers)
        else:
            ranges = [fold_documents(reader, first_seq, last_seq, on_chunk)]
        yield join_ranges(ranges)
        return
    chunks = archive.read_documents_by_part(reader, first_seq, last_seq, CHUNK)
    for _, part in itertools.groupby(chunks, key=lambda chunk: chunk[0]):
        folded = FoldedRange()
        for _, rows in part:
            fold_documents_chunk(reader, refs, folded, rows)
            on_chunk(len(rows))
        yield join_ranges([folded])


def _stage_parts(
    reader: psycopg.Connection[Any], database_url: str, planned: Plan, first: int, last: int
) -> None:
    """Give each record key of the archive its part in ``reader``'s transaction; the keys
    are listed by a second connection in the same snapshot (one cannot read a cursor while
    it copies)."""
    snapshot = snapshots.export(reader)
    with psycopg.connect(database_url) as lister:
        lister.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with lister.transaction():
            snapshots.use(lister, snapshot)
            keys = archive.record_keys(lister, first, last)
            archive.stage_parts(reader, planned.record_parts(keys))


def _replay(
    database_url: str,
    as_of: datetime | None,
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    progress: Progress,
    workers: int,
    memory_mb: float,
) -> ReplayResult:
    with psycopg.connect(database_url) as writer:
        with psycopg.connect(database_url) as reader:
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot
            with reader.transaction():
                bounds = archive.bounds(reader)
                total, first_seq, last_seq = bounds
                planned: Plan | None = None
                refs = PersonRefs()  # one bounded cache of resolved ids for both passes
                if total > part_capacity(memory_mb):
                    progress("planning", 0, total)
                    planned = plan(reader, first_seq, last_seq, part_capacity(memory_mb), refs)
                    _stage_parts(reader, database_url, planned, first_seq, last_seq)
                    planned.release()
                    progress("planning", total, total)
                latest = None if planned is None else planned.latest
                for _ in range(2):
                    parts = _parts(reader, database_url, bounds, planned, workers, progress, refs)
                    try:
                        totals = _write(writer, parts, planned, latest, as_of, allowed_lateness,
                                        config, last_seq, progress)  # fmt: skip
                        break
                    except _LatestMoved as moved:
                        latest = moved.latest
                else:  # pragma: no cover - the second pass derives at the fold's own latest
                    raise RuntimeError("replay: the latest event time moved twice")
        instant = as_of or watermark(totals.latest, allowed_lateness)
        if instant is not None:  # hook: the churn model's counts from the same fold
            held = totals.engagement
            days = replay_engagement.read(writer) if held is None else iter(held)
            churn_model.rebuild(writer, ((p, d, ALL) for p, d in days))
        replay_engagement.drop(writer)
        sink = DeadLetterSink("replay")
        with writer.transaction():
            sink.store(writer, totals.letters)
        sink.count(totals.letters)
    n_persons, n_devices = totals.persons, totals.devices
    progress("writing", n_persons + n_devices, n_persons + n_devices)
    return ReplayResult(
        totals.events,
        last_seq,
        instant,
        n_persons,
        n_devices,
        len(totals.letters),
        1 if planned is None else planned.parts,
    )


def _write(
    writer: psycopg.Connection[Any],
    parts: Iterator[tuple[RawWorld, FoldedRange]],
    planned: Plan | None,
    latest: datetime | None,
    as_of: datetime | None,
    allowed_lateness: timedelta,
    config: LifecycleConfig,
    last_seq: int,
    progress: Progress,
) -> _Totals:
    """Assemble, derive and stage each part's rows (and engagement days), then swap them in
    (one transaction); with a plan, every part is derived at the planned latest time, and
    :class:`_LatestMoved` (rolling all back) says when the fold's differs."""
    totals = _Totals(engagement=[] if planned is None else None)
    staged = 0
    with writer.transaction():
        read_models.stage(writer)
        replay_engagement.create(writer)
        for raw, folded in parts:
            totals.events += folded.events
            totals.letters += folded.dead
            if folded.latest is not None and (
                totals.latest is None or folded.latest > totals.latest
            ):
                totals.latest = folded.latest
            progress_latest = folded.latest if planned is None else latest
            instant = as_of or watermark(progress_latest, allowed_lateness)
            world = assemble(raw.devices, raw.person_states, raw.identity)
            del raw
            n_persons, n_devices = _stage_world(writer, world, instant, config, totals)
            totals.persons += n_persons
            totals.devices += n_devices
            del world
            staged += 1
            progress("folding", staged, 1 if planned is None else planned.parts)
        if planned is not None and as_of is None and totals.latest != latest:
            raise _LatestMoved(totals.latest)
        instant = as_of or watermark(totals.latest, allowed_lateness)
        progress("writing", 0, totals.persons + totals.devices)
        read_models.swap_in(writer, Checkpoint("lifecycle", instant, last_seq, totals.events))
    return totals


def _stage_world(
    writer: psycopg.Connection[Any],
    world: World,
    instant: datetime | None,
    config: LifecycleConfig,
    totals: _Totals,
) -> tuple[int, int]:
    """Stage one part's person and device rows and its persons' engagement days."""
    letters = totals.letters
    aliases = aliases_by_person(world)
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
    counts = read_models.stage_rows(writer, person_rows, device_rows)
    if instant is not None:
        days = ((p, list(engagement_days(s, instant))) for p, s in humans)
        if totals.engagement is None:
            replay_engagement.add(writer, days)
        else:
            totals.engagement += days
    return counts
