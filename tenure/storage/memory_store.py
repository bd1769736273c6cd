"""The storage seam in memory: the same behaviour as Postgres, in dicts, for fast tests.

:func:`memory_store` returns a :class:`~tenure.storage.seam.ProjectionStore` over one
:class:`MemoryTables` (one process, one thread, no transactions: each call is applied at
once). It passes the seam's test suite (``tests/unit/storage/test_seam_memory.py``), as the
Postgres store does (``tests/integration/storage/test_seam_postgres.py``), so the apply and
derive stages run on it in unit tests without I/O. States are stored encoded, as in
Postgres, so every state read back went through the codec.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import count, islice
from typing import Any, TypeVar

from tenure.domain.identity import IdentityGraph
from tenure.domain.level import Level
from tenure.domain.segment import Segment
from tenure.domain.stage import Stage
from tenure.domain.transitions import Transition
from tenure.domain.view import PersonView
from tenure.domain.watermark import watermark
from tenure.storage.raw_states import DeltaRows, RawRead, RawTable, joined
from tenure.storage.read_models import DEVICE_COLUMNS, STORED_PERSON_COLUMNS
from tenure.storage.seam import Kind, Partition, PersonsWritten, PersonWrite, ProjectionStore
from tenure.storage.transitions_outbox import PendingTransition, RelayPosition

__all__ = ["MemoryTables", "memory_store"]

S = TypeVar("S")


@dataclass(slots=True)
class MemoryTables:
    """What the Postgres tables of the seam hold, as dicts (inspect them in tests)."""

    compacted: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """Compacted state documents by table, then key."""
    deltas: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    """Delta documents by delta table, in append order."""
    mentions: set[tuple[str, str]] = field(default_factory=set)
    """(person_id, device_id)."""
    links: set[tuple[str, str]] = field(default_factory=set)
    """Identity links, both directions."""
    marks: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: {"person": [], "device": []}
    )
    """Queue marks (seq, key) per kind, in arrival order."""
    claimed: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per kind, the keys of the last claim and their oldest claimed mark's seq."""
    queued_at: dict[int, float] = field(default_factory=dict)
    """Each mark's queueing time (``time.monotonic()``), by seq."""
    seq: Iterator[int] = field(default_factory=lambda: count(1))
    """The next queue mark's arrival number."""
    progress: dict[Partition, tuple[datetime, int | None]] = field(default_factory=dict)
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``persons`` rows by id: column -> value (``STORED_PERSON_COLUMNS`` and ``basis``)."""
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: dict[str, tuple[Transition, datetime]] = field(default_factory=dict)
    """Transitions by id, in the order they were added (the outbox's order)."""
    relayed: int = 0
    """How many transitions of ``outbox`` (in its order) the relay has published."""
    churn_pending: dict[str, tuple[str, list[Any] | None]] = field(default_factory=dict)
    """The churn model's queue: person id -> (group, sorted days or ``None``)."""


@dataclass(frozen=True, slots=True)
class MemoryRawStates:
    """Raw states: compacted documents and a log of delta documents per table."""

    t: MemoryTables

    def append(self, rows: DeltaRows[S]) -> None:
        """See :class:`~tenure.storage.seam.RawStates`."""
        log = self.t.deltas.setdefault(rows.kind.deltas, [])
        log += [(key, rows.kind.encode(state)) for key, state in rows.folds.items()]

    def read(self, kind: RawTable[S], keys: list[str]) -> RawRead[S]:
        """See :class:`~tenure.storage.seam.RawStates`."""
        wanted = set(keys)
        rows = self.t.compacted.get(kind.table, {})
        base = {k: kind.decode(rows[k]) for k in wanted if k in rows}
        deltas: dict[str, list[S]] = {}
        for key, doc in self.t.deltas.get(kind.deltas, []):
            if key in wanted:
                deltas.setdefault(key, []).append(kind.decode(doc))
        states = {k: joined(k, kind, base.get(k), deltas.get(k, [])) for k in {*base, *deltas}}
        return RawRead(states, frozenset(deltas))

    def compact(self, kind: RawTable[S], states: Mapping[str, S]) -> None:
        """See :class:`~tenure.storage.seam.RawStates`."""
        if not states:
            return
        rows = self.t.compacted.setdefault(kind.table, {})
        rows.update({k: kind.encode(s) for k, s in states.items()})
        log = self.t.deltas.get(kind.deltas, [])
        log[:] = [(k, doc) for k, doc in log if k not in states]

    def read_all(self, kind: RawTable[S]) -> dict[str, S]:
        """See :class:`~tenure.storage.seam.RawStates`."""
        keys = {*self.t.compacted.get(kind.table, {})}
        keys |= {k for k, _ in self.t.deltas.get(kind.deltas, [])}
        return self.read(kind, sorted(keys)).states


@dataclass(frozen=True, slots=True)
class MemoryKeyGraph:
    """Identity links and device mentions as sets of pairs."""

    t: MemoryTables

    def add_mentions(self, mentions: Iterable[tuple[str, str]]) -> None:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        self.t.mentions.update(mentions)

    def add_links(self, links: Iterable[tuple[str, str]]) -> None:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        self.t.links.update((a, b) for x, y in links for a, b in ((x, y), (y, x)) if a != b)

    def components(self, person_ids: Iterable[str]) -> tuple[frozenset[str], IdentityGraph]:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        seeds = set(person_ids)
        reach, frontier = set(seeds), set(seeds)
        while frontier:
            frontier = {b for a, b in self.t.links if a in frontier} - reach
            reach |= frontier
        graph = IdentityGraph()
        for a, b in sorted((a, b) for a, b in self.t.links if a in reach and a < b):
            graph = graph.with_link(a, b)
        return frozenset(reach), graph

    def devices_mentioning(self, person_ids: Iterable[str]) -> frozenset[str]:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        keys = set(person_ids)
        return frozenset(d for p, d in self.t.mentions if p in keys)

    def persons_mentioned_by(self, device_ids: Iterable[str]) -> frozenset[str]:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        keys = set(device_ids)
        return frozenset(p for p, d in self.t.mentions if d in keys)


@dataclass(frozen=True, slots=True)
class MemoryDeriveQueue:
    """Queue marks in arrival order, claimed like ``tenure.storage.derive_queue``."""

    t: MemoryTables

    def oldest(self, kind: Kind, limit: int) -> list[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        first: dict[str, None] = {}  # marks are in seq order: keys by their first mark
        for _, key in self.t.marks[kind]:
            if len(first) == limit:
                break
            first.setdefault(key, None)
        return list(first)  # a claim's widening head reaches as far (no other pass here)

    def claim_keys(self, kind: Kind, keys: Sequence[str]) -> list[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        wanted = set(keys)
        marks = self.t.marks[kind]
        places: dict[str, int] = {}
        for s, k in marks:
            if k in wanted:
                places.setdefault(k, s)  # marks are in seq order: the first is the oldest
        marks[:] = [(s, k) for s, k in marks if k not in wanted]
        self.t.claimed[kind] = places  # one pass at a time: the last claim's
        return sorted(places)

    def claim(self, kind: Kind, limit: int) -> list[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        return self.claim_keys(kind, self.oldest(kind, limit))

    def enqueue(self, kind: Kind, keys: Sequence[str]) -> None:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        marks = [(next(self.t.seq), k) for k in sorted(set(keys))]
        now = time.monotonic()
        self.t.queued_at.update((s, now) for s, _ in marks)
        self.t.marks[kind] += marks

    def give_back(self, kind: Kind, keys: Sequence[str]) -> None:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        claimed = self.t.claimed.get(kind, {})
        back = sorted({(claimed[k], k) for k in keys if k in claimed})
        self.t.marks[kind] = sorted([*self.t.marks[kind], *back])
        self.enqueue(kind, [k for k in keys if k not in claimed])

    def waited(self, kind: Kind, keys: Sequence[str]) -> list[float]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        claimed = self.t.claimed.get(kind, {})
        now = time.monotonic()
        return [now - self.t.queued_at[claimed[k]] for k in keys if k in claimed]

    def hold_humans(self, humans: Sequence[str]) -> set[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue` (one pass at a time: all)."""
        return set(humans)

    def queue_touched(self, person_ids: Iterable[str], device_ids: Iterable[str]) -> int:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        persons = set(person_ids)
        devices = set(device_ids)
        self.enqueue(
            "person", sorted(persons | MemoryKeyGraph(self.t).persons_mentioned_by(devices))
        )
        return len(persons)


@dataclass(frozen=True, slots=True)
class MemoryProgress:
    """Latest event time and applied offset per partition."""

    t: MemoryTables

    def record(
        self, progress: Mapping[Partition, datetime], offsets: Mapping[Partition, int]
    ) -> None:
        """See :class:`~tenure.storage.seam.Progress`."""
        for key, at in progress.items():
            old = self.t.progress.get(key)
            offset = offsets.get(key)
            if old is not None:
                at = max(at, old[0])
                offset = max((o for o in (offset, old[1]) if o is not None), default=None)
            self.t.progress[key] = (at, offset)
        for key in set(offsets) - set(progress):
            if (old := self.t.progress.get(key)) is not None:
                offset = max((o for o in (offsets[key], old[1]) if o is not None), default=None)
                self.t.progress[key] = (old[0], offset)

    def watermark(self, lateness: timedelta) -> datetime | None:
        """See :class:`~tenure.storage.seam.Progress`."""
        return watermark(max((at for at, _ in self.t.progress.values()), default=None), lateness)


def _upsert_forward(
    table: dict[str, dict[str, Any]], columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> set[str]:
    stale = set()
    for row in rows:
        new = dict(zip((*columns, "basis"), row, strict=True))
        key = str(row[0])
        old = table.get(key)
        if old is not None and not (
            old["basis"] <= new["basis"] and ("as_of" not in new or old["as_of"] <= new["as_of"])
        ):
            stale.add(key)
            continue
        table[key] = {**(old or {}), **new}
    return stale


@dataclass(frozen=True, slots=True)
class MemoryReadModels:
    """``persons`` and ``devices`` rows as dicts of columns."""

    t: MemoryTables

    def current_views(self, person_ids: Sequence[str], as_of: datetime) -> dict[str, PersonView]:
        """See :class:`~tenure.storage.seam.ReadModelWrites`."""
        return {
            p: PersonView(
                p,
                as_of,
                segment=Segment(r["segment"]),
                stage=Stage(r["stage"]),
                level=Level(r["level"]),
                tier=str(r["tier"]),
                is_super_user=bool(r["is_super_user"]),
            )
            for p in person_ids
            if (r := self.t.persons.get(p)) is not None
        }

    def write_persons(self, writes: Sequence[PersonWrite]) -> PersonsWritten:
        """See :class:`~tenure.storage.seam.ReadModelWrites` (one thread: none overtaken)."""
        for w in writes:
            for p in w.deleted:
                self.t.persons.pop(p, None)
        stale = self.upsert_persons([w.row for w in writes if w.row is not None])
        return PersonsWritten(stale, set())

    def upsert_persons(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert or move forward rows of ``STORED_PERSON_COLUMNS`` + basis; return the keys
        that did not move."""
        return _upsert_forward(self.t.persons, STORED_PERSON_COLUMNS, rows)

    def upsert_devices(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """See :class:`~tenure.storage.seam.ReadModelWrites`."""
        return _upsert_forward(self.t.devices, DEVICE_COLUMNS, rows)


@dataclass(frozen=True, slots=True)
class MemoryOutbox:
    """Transitions by id."""

    t: MemoryTables

    def add(self, found: Sequence[Transition], as_of: datetime) -> None:
        """See :class:`~tenure.storage.seam.TransitionsOutbox`."""
        for t in found:
            self.t.outbox.setdefault(t.id, (t, as_of))

    def claim_relay(self) -> RelayPosition | None:
        """See :class:`~tenure.storage.seam.TransitionsOutbox` (one thread: always got)."""
        return RelayPosition(0, self.t.relayed)

    def after(
        self, position: RelayPosition, limit: int
    ) -> tuple[list[PendingTransition], RelayPosition]:
        """See :class:`~tenure.storage.seam.TransitionsOutbox` (every write is final)."""
        taken = [
            PendingTransition(t.id, t.person_id, t.kind, t.old, t.new, t.at, as_of)
            for t, as_of in islice(self.t.outbox.values(), position.seq, position.seq + limit)
        ]
        return taken, RelayPosition(0, position.seq + len(taken))

    def move_relay(self, position: RelayPosition) -> None:
        """See :class:`~tenure.storage.seam.TransitionsOutbox`."""
        self.t.relayed = position.seq


@dataclass(frozen=True, slots=True)
class MemoryChurnQueue:
    """The churn model's pending people."""

    t: MemoryTables

    def queue_people(self, people: Iterable[tuple[str, Iterable[Any] | None, str]]) -> int:
        """See :class:`~tenure.storage.seam.ChurnQueue`."""
        latest = {
            pid: (group, None if days is None else sorted(set(days))) for pid, days, group in people
        }
        self.t.churn_pending.update(latest)
        return len(latest)

    def pending(self) -> dict[str, tuple[str, list[date] | None]]:
        """See :class:`~tenure.storage.seam.ChurnQueue`."""
        return {
            pid: (group, None if days is None else list(days))
            for pid, (group, days) in self.t.churn_pending.items()
        }


def memory_store(tables: MemoryTables | None = None) -> ProjectionStore:
    """The seam over ``tables`` (new, empty tables when ``None``)."""
    t = MemoryTables() if tables is None else tables
    return ProjectionStore(
        MemoryRawStates(t),
        MemoryKeyGraph(t),
        MemoryDeriveQueue(t),
        MemoryProgress(t),
        MemoryReadModels(t),
        MemoryOutbox(t),
        MemoryChurnQueue(t),
    )
