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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tenure.analytics.return_time_filing import Filing
from tenure.analytics.return_times import ALL
from tenure.config import DEFAULT_PROJECTOR_CACHE_MB
from tenure.domain.config import LifecycleConfig
from tenure.domain.events import later
from tenure.domain.neighbourhood import RawWorld
from tenure.domain.view import DEFAULT_CONFIG
from tenure.domain.world import assemble
from tenure.errors import TenureError
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.projection.catch_up import converge
from tenure.projection.person_refs import PersonRefs
from tenure.projection.replay_fold import (
    CHUNK,
    FEW_COLLECTIONS,
    FoldedRange,
    fold_documents,
    fold_documents_chunk,
    join_ranges,
)
from tenure.projection.replay_plan import Plan, packed, part_capacity, plan, plan_named
from tenure.projection.replay_rows import PartRows, aliases_by_person, part_rows
from tenure.projection.replay_workers import (
    WorkerParts,
    assign,
    part_events,
    plan_in_workers,
    replay_in_workers,
    worker_count,
)
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS, watermark
from tenure.storage import (
    archive,
    churn_model,
    person_pseudonyms,
    read_models,
    replay_engagement,
    snapshots,
)
from tenure.storage.read_models import Checkpoint

__all__ = ["Progress", "ReplayResult", "aliases_by_person", "replay"]

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
    """Parts of independent persons folded (one after the other, or by ``workers``)."""
    workers: int = 1
    """Worker processes that folded the parts (1: the replaying process itself)."""


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

    ``workers`` (``TENURE_REPLAY_WORKERS``; 0: one per core this process may use): worker
    processes that fold, assemble and derive the parts side by side
    (:mod:`tenure.projection.replay_workers`); the archive is then always planned, in parts
    of at most a ``workers``-th of the memory bound. 1, or an archive of fewer than
    :data:`~tenure.projection.replay_workers.MIN_EVENTS_PER_WORKER` events per worker: the
    replaying process alone.
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
    filing: Filing | None = None
    """The churn model's counts, when worker processes filed their parts."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """How a replay reads the archive: its bounds, its plan (``None``: one part, no plan),
    and the record keys each worker process replays (none: the replaying process does)."""

    bounds: tuple[int, int, int]
    planned: Plan | None
    given: list[WorkerParts]


def _folded_here(
    reader: psycopg.Connection[Any],
    layout: _Layout,
    refs: PersonRefs,
    progress: Progress,
) -> Iterator[tuple[RawWorld, FoldedRange]]:
    """The archive (``reader``'s snapshot) folded into raw states in this process, part by
    part (the whole archive at once without a plan)."""
    total, first_seq, last_seq = layout.bounds
    done = [0]

    def on_chunk(rows: int) -> None:
        done[0] += rows
        progress("reading archive", done[0], total)

    progress("reading archive", 0, total)
    if layout.planned is None:
        yield join_ranges([fold_documents(reader, first_seq, last_seq, on_chunk)])
        return
    chunks = archive.read_documents_by_part(reader, first_seq, last_seq, CHUNK)
    for _, part in itertools.groupby(chunks, key=lambda chunk: chunk[0]):
        folded = FoldedRange()
        for _, rows in part:
            fold_documents_chunk(reader, refs, folded, rows)
            on_chunk(len(rows))
        yield join_ranges([folded])


def _rows_here(
    reader: psycopg.Connection[Any],
    layout: _Layout,
    refs: PersonRefs,
    instant_of: Callable[[datetime | None], datetime | None],
    config: LifecycleConfig,
    progress: Progress,
) -> Iterator[PartRows]:
    """Each part's rows, folded, assembled and derived in this process (lazily: a part's
    states live until its rows are taken)."""
    for raw, folded in _folded_here(reader, layout, refs, progress):
        world = assemble(raw.devices, raw.person_states, raw.identity)
        del raw
        instant = instant_of(folded.latest)
        rows = part_rows(world, instant, config, folded.events, folded.latest, folded.dead)
        del world, folded
        yield rows
        del rows


def _rows_in_workers(
    reader: psycopg.Connection[Any],
    database_url: str,
    layout: _Layout,
    instant: datetime | None,
    config: LifecycleConfig,
    progress: Progress,
) -> Iterator[PartRows]:
    """Each part's rows from the worker processes (:mod:`tenure.projection.replay_workers`),
    which read ``reader``'s snapshot."""
    total = layout.bounds[0]
    snapshot = snapshots.export(reader)  # valid while this transaction is open
    done = 0
    progress("reading archive", 0, total)
    for rows in replay_in_workers(database_url, snapshot, layout.given, instant, config):
        done += rows.events
        progress("reading archive", done, total)
        yield rows
        del rows


def _layout(
    reader: psycopg.Connection[Any],
    database_url: str,
    workers: int,
    memory_mb: float,
    refs: PersonRefs,
    progress: Progress,
) -> _Layout:
    """Plan the archive when it is larger than one part or worker processes will fold it,
    and give each record key its part (in ``reader``'s transaction, or to its worker)."""
    bounds = archive.bounds(reader)
    total, first_seq, last_seq = bounds
    used = worker_count(total, workers)
    capacity = max(1, part_capacity(memory_mb) // used)  # each worker holds one part
    if used > 1:  # as many parts for every worker, so they finish together
        capacity = part_events(total, used, capacity)
    if total <= capacity:
        return _Layout(bounds, None, [])
    progress("planning", 0, total)
    given: list[WorkerParts] = []
    if used > 1:
        listed: list[str] = []
        ranges = [plan_named(reader, first_seq, last_seq, refs, listed)]
        if ranges[0].unnamed:  # rows archived before their keys were recorded (0028)
            snapshot = snapshots.export(reader)
            ranges += plan_in_workers(database_url, snapshot, first_seq, last_seq, used)
        planned = packed(ranges, capacity)
        owner = assign(planned.sizes, used)
        keys: list[list[tuple[str, int]]] = [[] for _ in range(used)]
        for record_key, part in planned.record_parts(listed):
            keys[owner[part]].append((record_key, part))
        given = [WorkerParts(k, first_seq, last_seq) for k in keys if k]
    else:
        planned = plan(reader, first_seq, last_seq, capacity, refs)
        _stage_parts(reader, database_url, planned, first_seq, last_seq)
    planned.release()
    progress("planning", total, total)
    return _Layout(bounds, planned, given)


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


def _instants(
    planned: bool, latest: datetime | None, as_of: datetime | None, allowed_lateness: timedelta
) -> Callable[[datetime | None], datetime | None]:
    """The instant a part is derived at, from its fold's latest event time: without a plan
    its own; with one, every part's is the planned ``latest`` (checked by :func:`_write`)."""

    def instant_of(folded_latest: datetime | None) -> datetime | None:
        return as_of or watermark(latest if planned else folded_latest, allowed_lateness)

    return instant_of


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
                refs = PersonRefs()  # one bounded cache of resolved ids for both passes
                layout = _layout(reader, database_url, workers, memory_mb, refs, progress)
                planned = layout.planned
                latest = None if planned is None else planned.latest
                for _ in range(2):
                    instant_of = _instants(planned is not None, latest, as_of, allowed_lateness)
                    parts = (
                        _rows_in_workers(reader, database_url, layout, instant_of(latest),
                                         config, progress)
                        if layout.given
                        else _rows_here(reader, layout, refs, instant_of, config, progress)
                    )  # fmt: skip
                    try:
                        totals = _write(writer, parts, planned, latest, as_of, allowed_lateness,
                                        layout.bounds[2], progress)  # fmt: skip
                        break
                    except _LatestMoved as moved:
                        latest = moved.latest
                else:  # pragma: no cover - the second pass derives at the fold's own latest
                    raise RuntimeError("replay: the latest event time moved twice")
        instant = as_of or watermark(totals.latest, allowed_lateness)
        if instant is not None and totals.filing is not None:  # the workers filed the counts
            with writer.transaction():
                churn_model.replace_counts(writer, totals.filing)
                replay_engagement.contribute(writer, ALL)
        elif instant is not None:  # hook: the churn model's counts from the same fold
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
        layout.bounds[2],
        instant,
        n_persons,
        n_devices,
        len(totals.letters),
        1 if planned is None else planned.parts,
        max(1, len(layout.given)),
    )


def _write(
    writer: psycopg.Connection[Any],
    parts: Iterator[PartRows],
    planned: Plan | None,
    latest: datetime | None,
    as_of: datetime | None,
    allowed_lateness: timedelta,
    last_seq: int,
    progress: Progress,
) -> _Totals:
    """Stage each part's rows (and engagement days), then swap them in (one transaction);
    with a plan, every part was derived at the planned latest time, and
    :class:`_LatestMoved` (rolling all back) says when the fold's differs."""
    totals = _Totals(engagement=[] if planned is None else None)
    staged = 0
    with writer.transaction():
        read_models.stage(writer)
        replay_engagement.create(writer)
        for part in parts:
            n_persons, n_devices = read_models.stage_rows(writer, part.persons, part.devices)
            if totals.engagement is None:
                replay_engagement.add(writer, part.engagement)
            else:
                totals.engagement += part.engagement
            if part.filing is not None:
                totals.filing = totals.filing or Filing()
                totals.filing.add(part.filing)
            totals.events += part.events
            totals.letters += part.letters
            totals.latest = later(totals.latest, part.latest)
            totals.persons += n_persons
            totals.devices += n_devices
            del part
            staged += 1
            progress("folding", staged, 1 if planned is None else planned.parts)
        if planned is not None and as_of is None and totals.latest != latest:
            raise _LatestMoved(totals.latest)
        instant = as_of or watermark(totals.latest, allowed_lateness)
        progress("writing", 0, totals.persons + totals.devices)
        read_models.swap_in(writer, Checkpoint("lifecycle", instant, last_seq, totals.events))
    return totals
