"""The storage seam over Postgres: each seam object bound to one connection.

Every method is the named function of its concern's module (raw states, key graph, derive
queue, progress, read-model rows, transitions outbox, churn model), run on the connection
in the caller's transaction; :class:`PostgresAggregates` (the aggregates stage's drains)
runs each drain step in a transaction of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from tenure.domain.identity import IdentityGraph
from tenure.domain.transitions import Transition
from tenure.domain.view import PersonView
from tenure.storage import (
    churn_model,
    derive_queue,
    key_graph,
    raw_states,
    read_model_rows,
    survival_aggregates,
    transitions_outbox,
)
from tenure.storage.connection import Conn
from tenure.storage.progress import projection_watermark, record_progress
from tenure.storage.raw_states import DeltaRows, RawRead, RawTable
from tenure.storage.read_models import DEVICE_COLUMNS, STORED_PERSON_COLUMNS
from tenure.storage.seam import Kind, Partition, PersonsWritten, PersonWrite, ProjectionStore
from tenure.storage.state_cache import RawCaches, StateCache
from tenure.storage.transitions_outbox import PendingTransition, RelayPosition

__all__ = [
    "PostgresAggregates",
    "PostgresChurnQueue",
    "PostgresOutbox",
    "PostgresProgress",
    "postgres_store",
]

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class PostgresRawStates:
    """Raw states in ``raw_*_states`` / ``raw_*_deltas`` (decoded states cached)."""

    conn: Conn
    caches: RawCaches

    def _cache(self, kind: RawTable[S]) -> StateCache[S]:
        cache: Any = self.caches.devices if kind is raw_states.DEVICES else self.caches.persons
        return cache  # type: ignore[no-any-return]

    def append(self, rows: DeltaRows[S]) -> None:
        """See :class:`~tenure.storage.seam.RawStates`."""
        raw_states.append_deltas(self.conn, rows)

    def read(self, kind: RawTable[S], keys: list[str]) -> RawRead[S]:
        """See :class:`~tenure.storage.seam.RawStates`."""
        return raw_states.read_cached(self.conn, kind, self._cache(kind), keys)

    def compact(self, kind: RawTable[S], states: Mapping[str, S]) -> None:
        """See :class:`~tenure.storage.seam.RawStates`."""
        raw_states.compact(self.conn, kind, self._cache(kind), states)

    def read_all(self, kind: RawTable[S]) -> dict[str, S]:
        """See :class:`~tenure.storage.seam.RawStates`."""
        return raw_states.read_all(self.conn, kind)


@dataclass(frozen=True, slots=True)
class PostgresKeyGraph:
    """Identity links and device mentions in ``identity_links`` / ``device_mentions``."""

    conn: Conn

    def add_mentions(self, mentions: Iterable[tuple[str, str]]) -> None:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        key_graph.add_mentions(self.conn, mentions)

    def add_links(self, links: Iterable[tuple[str, str]]) -> None:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        key_graph.add_links(self.conn, links)

    def components(self, person_ids: Iterable[str]) -> tuple[frozenset[str], IdentityGraph]:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        return key_graph.components(self.conn, person_ids)

    def devices_mentioning(self, person_ids: Iterable[str]) -> frozenset[str]:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        return key_graph.devices_mentioning(self.conn, person_ids)

    def persons_mentioned_by(self, device_ids: Iterable[str]) -> frozenset[str]:
        """See :class:`~tenure.storage.seam.KeyGraph`."""
        return key_graph.persons_mentioned_by(self.conn, device_ids)


@dataclass(frozen=True, slots=True)
class PostgresDeriveQueue:
    """``dirty_persons`` / ``dirty_devices``."""

    conn: Conn
    claimed: dict[str, dict[str, derive_queue.Place]] = field(default_factory=dict)
    """Per kind, each key this store claimed and its place in the queue."""
    claimed_at: dict[str, float] = field(default_factory=dict)
    """Per kind, when this store last claimed (``time.monotonic()``)."""

    def claim(self, kind: Kind, limit: int) -> list[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        places = derive_queue.claim_marks(self.conn, kind, limit)
        self.claimed.setdefault(kind, {}).update(places)
        self.claimed_at[kind] = time.monotonic()
        return sorted(places)

    def claim_keys(self, kind: Kind, keys: Sequence[str]) -> list[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        places = derive_queue.claim_key_marks(self.conn, kind, keys)
        self.claimed.setdefault(kind, {}).update(places)
        self.claimed_at[kind] = time.monotonic()
        return sorted(places)

    def enqueue(self, kind: Kind, keys: Sequence[str]) -> None:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        derive_queue.enqueue(self.conn, kind, keys)

    def give_back(self, kind: Kind, keys: Sequence[str]) -> None:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        claimed = self.claimed.get(kind, {})
        derive_queue.give_back(self.conn, kind, {k: claimed[k] for k in keys if k in claimed})
        derive_queue.enqueue(self.conn, kind, [k for k in keys if k not in claimed])

    def waited(self, kind: Kind, keys: Sequence[str]) -> list[float]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        claimed = self.claimed.get(kind, {})
        since_claim = time.monotonic() - self.claimed_at.get(kind, time.monotonic())
        return [claimed[k].waited_s + since_claim for k in keys if k in claimed]

    def hold_humans(self, humans: Sequence[str]) -> set[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        return derive_queue.hold_humans(self.conn, humans)

    def queue_touched(self, person_ids: Iterable[str], device_ids: Iterable[str]) -> int:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        return derive_queue.queue_touched(self.conn, person_ids, device_ids)

    def oldest(self, kind: Kind, limit: int) -> list[str]:
        """See :class:`~tenure.storage.seam.DeriveQueue`."""
        return derive_queue.oldest(self.conn, kind, limit)


@dataclass(frozen=True, slots=True)
class PostgresProgress:
    """``projection_progress``."""

    conn: Conn

    def record(
        self, progress: Mapping[Partition, datetime], offsets: Mapping[Partition, int]
    ) -> None:
        """See :class:`~tenure.storage.seam.Progress`."""
        record_progress(self.conn, progress, offsets)

    def watermark(self, lateness: timedelta) -> datetime | None:
        """See :class:`~tenure.storage.seam.Progress`."""
        return projection_watermark(self.conn, lateness)


@dataclass(frozen=True, slots=True)
class PostgresReadModels:
    """``persons`` / ``devices`` rows written by the derive stage."""

    conn: Conn

    def current_views(self, person_ids: Sequence[str], as_of: datetime) -> dict[str, PersonView]:
        """See :class:`~tenure.storage.seam.ReadModelWrites`."""
        return read_model_rows.current_views(self.conn, person_ids, as_of)

    def write_persons(self, writes: Sequence[PersonWrite]) -> PersonsWritten:
        """See :class:`~tenure.storage.seam.ReadModelWrites`.

        In the derive pass's repeatable read transaction, a row another pass wrote after
        this pass's snapshot (an id of the same human it derived, committed in between)
        fails the statement with a serialization error. The humans with one id and the
        linked ones (``PersonWrite.linked``, the only ones another pass can write) are
        written apart, each group in a savepoint; on that error a group is split in halves,
        each in a savepoint of its own, until the humans that fail are found and left out
        (:func:`~tenure.storage.read_model_rows.write_linked_apart`): the rest of the pass
        stands, not redone.
        """

        def attempt(part: Sequence[PersonWrite]) -> set[str]:
            with self.conn.transaction():  # a savepoint in the pass's transaction
                read_model_rows.delete_persons(self.conn, [d for w in part for d in w.deleted])
                return self.upsert_persons([w.row for w in part if w.row is not None])

        return read_model_rows.write_linked_apart(writes, attempt)

    def upsert_persons(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert or move forward rows of ``STORED_PERSON_COLUMNS`` + basis; return the keys
        that did not move."""
        return read_model_rows.upsert_forward(
            self.conn, "persons", "person_id", STORED_PERSON_COLUMNS, rows
        )

    def upsert_devices(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """See :class:`~tenure.storage.seam.ReadModelWrites`."""
        return read_model_rows.upsert_forward(
            self.conn, "devices", "device_id", DEVICE_COLUMNS, rows
        )


@dataclass(frozen=True, slots=True)
class PostgresOutbox:
    """``lifecycle_transitions``."""

    conn: Conn

    def add(self, found: Sequence[Transition], as_of: datetime) -> None:
        """See :class:`~tenure.storage.seam.TransitionsOutbox`."""
        transitions_outbox.add(self.conn, found, as_of)

    def claim_relay(self) -> RelayPosition | None:
        """See :class:`~tenure.storage.seam.TransitionsOutbox`."""
        return transitions_outbox.claim_relay(self.conn)

    def after(
        self, position: RelayPosition, limit: int
    ) -> tuple[list[PendingTransition], RelayPosition]:
        """See :class:`~tenure.storage.seam.TransitionsOutbox`."""
        return transitions_outbox.after(self.conn, position, limit)

    def move_relay(self, position: RelayPosition) -> None:
        """See :class:`~tenure.storage.seam.TransitionsOutbox`."""
        transitions_outbox.move_relay(self.conn, position)


@dataclass(frozen=True, slots=True)
class PostgresChurnQueue:
    """``churn_pending``."""

    conn: Conn

    def queue_people(self, people: Iterable[tuple[str, Iterable[Any] | None, str]]) -> int:
        """See :class:`~tenure.storage.seam.ChurnQueue`."""
        return churn_model.queue_people(self.conn, people)

    def pending(self) -> dict[str, tuple[str, list[date] | None]]:
        """See :class:`~tenure.storage.seam.ChurnQueue`."""
        return churn_model.read_pending(self.conn)


@dataclass(frozen=True, slots=True)
class PostgresAggregates:
    """``survival_dirty`` -> the survival aggregates, ``churn_pending`` -> the churn counts."""

    conn: Conn

    def drain_survival(self, limit: int) -> int:
        """See :class:`~tenure.storage.seam.AggregateDrains`."""
        return survival_aggregates.drain(self.conn, limit=limit)

    def drain_churn(self, limit: int) -> int:
        """See :class:`~tenure.storage.seam.AggregateDrains`."""
        return churn_model.drain(self.conn, limit=limit)

    def record_as_of(self, as_of: datetime, inactivity_window_days: int) -> None:
        """See :class:`~tenure.storage.seam.AggregateDrains`."""
        survival_aggregates.record_as_of(self.conn, as_of, inactivity_window_days)


def postgres_store(conn: Conn, caches: RawCaches | None = None) -> ProjectionStore:
    """The seam over ``conn`` (statements run in its current transaction); ``caches``: the
    process's decoded raw states (a fresh cache when ``None``)."""
    return ProjectionStore(
        PostgresRawStates(conn, RawCaches() if caches is None else caches),
        PostgresKeyGraph(conn),
        PostgresDeriveQueue(conn),
        PostgresProgress(conn),
        PostgresReadModels(conn),
        PostgresOutbox(conn),
        PostgresChurnQueue(conn),
    )
