"""``tenure replay``'s parts in worker processes: each worker reads, folds, assembles and
derives whole parts of independent persons and sends back only their rows.

The parts come from the replay's plan (:mod:`tenure.projection.replay_plan`): the connected
components of "keys touched by one event" packed into parts, so a part's rows need nothing
outside it. Each worker is forked from the replaying process after the plan, imports the
replay's snapshot (every worker reads exactly the archive the replay read), records which
of the archive's record keys are its parts' in a temporary table of its own, and reads them
part by part through one server-side cursor. Per part it sends a
:class:`~tenure.projection.replay_rows.PartRows` with the rows built: a few hundred bytes per
person, not the raw states (which cost as much to pickle as to fold: docs/design/replay-cost.md).

A worker that fails sends its traceback and stops; one that dies without a word (killed,
out of memory) is noticed by its exit code. Either way the replay raises
:class:`ReplayWorkerFailed`, the other workers are stopped and nothing is swapped in.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.process import BaseProcess
from typing import Any

import psycopg

from tenure.domain.config import LifecycleConfig
from tenure.domain.world import assemble
from tenure.errors import TenureError
from tenure.projection.person_refs import PersonRefs
from tenure.projection.replay_fold import (
    CHUNK,
    FEW_COLLECTIONS,
    FoldedRange,
    fold_documents_chunk,
    join_ranges,
)
from tenure.projection.replay_plan import RangePlan, plan_range
from tenure.projection.replay_rows import PartRows, built, part_rows
from tenure.storage import archive, snapshots

WAIT_S = 1.0
"""How often the replaying process looks for a worker that died without a word."""
MIN_EVENTS_PER_WORKER = 20_000
"""With the default worker count, no more workers than one per this many archived events
(forking and the plan cost more than they save on a small archive)."""
PARTS_PER_WORKER = 2
"""The archive is cut into at least this many parts per worker (:func:`part_events`)."""


class ReplayWorkerFailed(TenureError):
    """A replay worker process failed; nothing was swapped in."""


@dataclass(frozen=True, slots=True)
class _Finished:
    """A worker has sent every part it was given."""


@dataclass(frozen=True, slots=True)
class _Failed:
    """A worker stopped on an error (its traceback)."""

    error: str


def forking() -> bool:
    """Whether worker processes can be forked here (they inherit the plan, unpickled)."""
    return "fork" in multiprocessing.get_all_start_methods()


def worker_count(events: int, workers: int) -> int:
    """Worker processes for a replay of ``events`` archived events: ``workers`` as given, or
    for 0 one per core this process may use, but no more than one per
    :data:`MIN_EVENTS_PER_WORKER` events; 1 (the replaying process alone) where processes
    cannot be forked."""
    if workers > 0:
        wanted = min(workers, max(1, events))
    else:
        cores = len(os.sched_getaffinity(0))
        wanted = min(cores, events // MIN_EVENTS_PER_WORKER)
    return wanted if wanted > 1 and forking() else 1


def part_events(events: int, workers: int, capacity: int) -> int:
    """Events per part when ``workers`` processes share ``events``: at most ``capacity`` (a
    worker's share of the memory bound), and as many parts for every worker (at least
    :data:`PARTS_PER_WORKER`), so that parts packed nearly full share out evenly (with
    five full parts for two workers, one would fold a whole part more)."""
    per_worker = max(PARTS_PER_WORKER, -(-events // (max(1, workers) * max(1, capacity))))
    return max(1, -(-events // (max(1, workers) * per_worker)))


def assign(sizes: Mapping[int, int], workers: int) -> dict[int, int]:
    """Each part's worker: the largest parts first, each to the worker with the fewest
    events so far (``sizes``: events per part)."""
    load = [0] * max(1, workers)
    owner: dict[int, int] = {}
    for part, size in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        worker = min(range(len(load)), key=lambda w: (load[w], w))
        owner[part] = worker
        load[worker] += size
    return owner


def seq_ranges(first_seq: int, last_seq: int, parts: int) -> list[tuple[int, int]]:
    """``first_seq..last_seq`` cut into ``parts`` contiguous ranges (fewer if it is short)."""
    span = last_seq - first_seq + 1
    parts = max(1, min(parts, span))
    cuts = [first_seq + span * i // parts for i in range(parts + 1)]
    return [(cuts[i], cuts[i + 1] - 1) for i in range(parts)]


def exit_with_parent(parent: int) -> None:
    """End this process (at once, exit code 1) as soon as ``parent`` is no longer its
    parent, checking every ``WAIT_S`` in a daemon thread: a pool worker whose replaying
    process was killed must not go on holding its snapshot's transaction open."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WAIT_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _plan_range(database_url: str, snapshot: str, first_seq: int, last_seq: int) -> RangePlan:
    """A worker's share of the payload plan: the components of one seq range's rows without
    recorded keys, in ``snapshot``."""
    gc.set_threshold(*FEW_COLLECTIONS)
    with psycopg.connect(database_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            snapshots.use(conn, snapshot)
            return plan_range(conn, first_seq, last_seq, PersonRefs(), unnamed_only=True)


def plan_in_workers(
    database_url: str, snapshot: str, first_seq: int, last_seq: int, workers: int
) -> list[RangePlan]:
    """The components of the rows of ``first_seq..last_seq`` in ``snapshot`` whose keys are
    not recorded (archived before migration 0028), planned from their payloads by
    ``workers`` processes over seq ranges (each sends back its union-find: a few dozen bytes
    per key, for :func:`~tenure.projection.replay_plan.packed` to join). A worker that
    fails or dies raises here (``BrokenProcessPool`` for the latter); one whose replaying
    process dies ends too (:func:`exit_with_parent`)."""
    ranges = seq_ranges(first_seq, last_seq, workers)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=len(ranges),
        mp_context=context,
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        futures = [
            pool.submit(_plan_range, database_url, snapshot, first, last) for first, last in ranges
        ]
        return [future.result() for future in futures]


@dataclass(frozen=True, slots=True)
class WorkerParts:
    """What one worker replays: its parts' record keys, and the archive's bounds."""

    record_parts: Sequence[tuple[str, int]]
    first_seq: int
    last_seq: int


def _send(results: Any, message: object, parent: int) -> None:
    """Put ``message`` on ``results``, waiting for room while the replaying process lives
    (an orphan worker ends instead of waiting for ever with its snapshot open)."""
    while True:
        try:
            results.put(message, timeout=WAIT_S)
            return
        except queue.Full:
            if os.getppid() != parent:
                raise SystemExit(1) from None


def _work(
    database_url: str,
    snapshot: str,
    given: WorkerParts,
    instant: datetime | None,
    config: LifecycleConfig,
    results: Any,
    parent: int,
) -> None:
    """A worker's life: every one of its parts' rows onto ``results``, then
    :class:`_Finished` (or :class:`_Failed`)."""
    try:
        # What the replaying process held at the fork is never collected here, and a part's
        # states live until it is sent (few in cycles): collect once a part, not while it
        # grows (the young-generation passes over its millions of objects cost ~4 %).
        gc.freeze()
        gc.disable()
        with psycopg.connect(database_url) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                snapshots.use(conn, snapshot)
                archive.stage_parts(conn, given.record_parts)
                refs = PersonRefs()
                chunks = archive.read_documents_by_part(
                    conn, given.first_seq, given.last_seq, CHUNK
                )
                for _, part in itertools.groupby(chunks, key=lambda chunk: chunk[0]):
                    folded = FoldedRange()
                    for _, rows in part:
                        fold_documents_chunk(conn, refs, folded, rows)
                    raw, totals = join_ranges([folded])
                    world = assemble(raw.devices, raw.person_states, raw.identity)
                    del raw
                    letters = list(totals.dead)
                    rows_of_part = part_rows(
                        world, instant, config, totals.events, totals.latest, letters
                    )
                    _send(results, built(rows_of_part), parent)
                    del world, rows_of_part
                    gc.collect()
        _send(results, _Finished(), parent)
    except SystemExit:
        raise
    except BaseException:
        _send(results, _Failed(traceback.format_exc()), parent)


def replay_in_workers(
    database_url: str,
    snapshot: str,
    given: Sequence[WorkerParts],
    instant: datetime | None,
    config: LifecycleConfig,
) -> Iterator[PartRows]:
    """Every part of ``given`` (one worker process each, forked now) as its rows, in the
    order they are done. At most one finished part per worker waits to be taken."""
    context = multiprocessing.get_context("fork")
    results = context.Queue(maxsize=max(1, len(given)))
    processes: list[BaseProcess] = [
        context.Process(
            target=_work,
            args=(database_url, snapshot, parts, instant, config, results, os.getpid()),
            name=f"tenure-replay-{n}",
            daemon=True,
        )
        for n, parts in enumerate(given)
    ]
    for process in processes:
        process.start()
    try:
        finished = 0
        while finished < len(processes):
            try:
                message = results.get(timeout=WAIT_S)
            except queue.Empty:
                for process in processes:
                    if process.exitcode not in (None, 0):
                        raise ReplayWorkerFailed(
                            f"replay worker {process.name} exited with code {process.exitcode}"
                        ) from None
                continue
            if isinstance(message, _Failed):
                raise ReplayWorkerFailed(f"a replay worker failed:\n{message.error}")
            if isinstance(message, _Finished):
                finished += 1
                continue
            yield message
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        results.close()
