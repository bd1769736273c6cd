"""The storage seam the projection stages write and read through, as small interfaces.

The apply and derive stages (:mod:`tenure.projection.apply`, :mod:`tenure.projection.derive`)
touch storage only through a :class:`ProjectionStore`: the raw states (compacted rows and
deltas), the key graph (identity links, device mentions), the derive queue, the progress
(watermark), the read models' forward-only writes, the transitions outbox and the churn
model's queue. Two implementations pass one test suite (``tests/*/storage/test_seam_*.py``):
Postgres (:mod:`tenure.storage.postgres_store`, one connection, the caller's transaction)
and memory (:mod:`tenure.storage.memory_store`, dicts, for fast tests of the stages). The
outbox relay (:func:`tenure.projection.outbox.relay_pending`) uses the same
:class:`TransitionsOutbox`; the aggregates stage (:mod:`tenure.projection.survival_stage`)
uses :class:`AggregateDrains` and :class:`Progress` (Postgres only so far).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

from tenure.domain.identity import IdentityGraph
from tenure.domain.transitions import Transition
from tenure.domain.view import PersonView
from tenure.storage.derive_queue import Kind
from tenure.storage.progress import Partition
from tenure.storage.raw_states import DeltaRows, RawRead, RawTable
from tenure.storage.transitions_outbox import PendingTransition, RelayPosition

__all__ = [
    "AggregateDrains",
    "ChurnQueue",
    "DeriveQueue",
    "KeyGraph",
    "Kind",
    "Partition",
    "PendingTransition",
    "PersonWrite",
    "PersonsWritten",
    "Progress",
    "ProjectionStore",
    "RawStates",
    "ReadModelWrites",
    "RelayPosition",
    "TransitionsOutbox",
]

S = TypeVar("S")


class RawStates(Protocol):
    """Each key's raw state: its compacted state joined with its deltas."""

    def append(self, rows: DeltaRows[S]) -> None:
        """Append one batch's deltas (no read, no lock)."""

    def read(self, kind: RawTable[S], keys: list[str]) -> RawRead[S]:
        """The states of ``keys`` that exist, and which of them have deltas."""

    def compact(self, kind: RawTable[S], states: Mapping[str, S]) -> None:
        """Store ``states`` (each a key's compacted state joined with the deltas read) as
        the compacted states and drop those deltas."""

    def read_all(self, kind: RawTable[S]) -> dict[str, S]:
        """Every state of ``kind`` (checks and tools)."""


class KeyGraph(Protocol):
    """Identity links between person ids, and which devices mention which persons."""

    def add_mentions(self, mentions: Iterable[tuple[str, str]]) -> None:
        """Record (person_id, device_id) pairs."""

    def add_links(self, links: Iterable[tuple[str, str]]) -> None:
        """Record identity links (both directions)."""

    def components(self, person_ids: Iterable[str]) -> tuple[frozenset[str], IdentityGraph]:
        """Every id linked (transitively) to ``person_ids``, and the links among them."""

    def devices_mentioning(self, person_ids: Iterable[str]) -> frozenset[str]:
        """Devices whose state mentions any of ``person_ids``."""

    def persons_mentioned_by(self, device_ids: Iterable[str]) -> frozenset[str]:
        """Persons any of ``device_ids`` mentions."""


class DeriveQueue(Protocol):
    """Marks of keys to derive, claimed oldest-queued first."""

    def claim(self, kind: Kind, limit: int) -> list[str]:
        """Claim every mark of the ``limit`` keys queued longest; return them sorted."""

    def claim_keys(self, kind: Kind, keys: Sequence[str]) -> list[str]:
        """Claim every mark of exactly ``keys`` (Postgres: those no other pass holds);
        return those that were queued, sorted."""

    def enqueue(self, kind: Kind, keys: Sequence[str]) -> None:
        """One new mark per key, at the back."""

    def give_back(self, kind: Kind, keys: Sequence[str]) -> None:
        """Queue ``keys`` again, each with one mark where the oldest mark this store
        claimed of it was (a key a pass leaves to another pass keeps its age); a key it
        did not claim goes to the back."""

    def waited(self, kind: Kind, keys: Sequence[str]) -> list[float]:
        """Of ``keys``, each one this store claimed: the seconds from its oldest claimed
        mark's queueing until now (a key given back and claimed again keeps its age)."""

    def hold_humans(self, humans: Sequence[str]) -> set[str]:
        """Of the canonical ``humans`` a pass is about to derive, those no other pass is
        deriving, held by this pass until its transaction ends."""

    def queue_touched(self, person_ids: Iterable[str], device_ids: Iterable[str]) -> int:
        """Queue ``person_ids`` and every person ``device_ids`` mention; return
        ``len(set(person_ids))``."""

    def oldest(self, kind: Kind, limit: int) -> list[str]:
        """Up to ``limit`` queued keys, oldest first (what :meth:`claim` would take)."""


class Progress(Protocol):
    """The latest event time (and applied offset) per input partition: the watermark."""

    def record(
        self, progress: Mapping[Partition, datetime], offsets: Mapping[Partition, int]
    ) -> None:
        """Move each partition's latest event time and applied offset forward."""

    def watermark(self, lateness: timedelta) -> datetime | None:
        """The latest event time less ``lateness`` (``None`` before any event)."""


@dataclass(frozen=True, slots=True)
class PersonWrite:
    """What a derive pass writes for one human: the rows it deletes (ids that became its
    aliases; the human itself when erased) and its new row (``None``: no row)."""

    human: str
    deleted: tuple[str, ...]
    row: tuple[Any, ...] | None
    linked: bool = False
    """The human has other ids (aliases) that another pass may claim. Only such a human's
    row can be written by another pass after this pass's snapshot, so Postgres writes these
    apart from the rest (:func:`~tenure.storage.read_model_rows.write_linked_apart`); a
    wrong ``False`` costs time, never a row."""


class PersonsWritten(NamedTuple):
    """What :meth:`ReadModelWrites.write_persons` did."""

    stale: set[str]
    """Rows that did not move forward (to be queued again)."""
    overtaken: set[str]
    """Humans of which nothing was written: another transaction wrote their rows after
    this one's snapshot (Postgres; their ids are to be queued again)."""


class ReadModelWrites(Protocol):
    """The derive stage's writes to ``persons`` and ``devices`` (rows only move forward)."""

    def current_views(self, person_ids: Sequence[str], as_of: datetime) -> dict[str, PersonView]:
        """The stored views of ``person_ids`` (the fields transitions compare)."""

    def write_persons(self, writes: Sequence[PersonWrite]) -> PersonsWritten:
        """Delete and upsert (forward only) each human's rows; a human whose rows another
        transaction changed after this one's snapshot is left out whole, not a failure."""

    def upsert_persons(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert or move forward rows of ``STORED_PERSON_COLUMNS`` + basis; return the keys
        that did not move."""

    def upsert_devices(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert or move forward rows of ``DEVICE_COLUMNS`` + basis; return the keys that
        did not move."""


class TransitionsOutbox(Protocol):
    """Transitions written with the rows that caused them, relayed to Kafka later."""

    def add(self, found: Sequence[Transition], as_of: datetime) -> None:
        """Add ``found`` (derived as of ``as_of``) at the back; ids already there are kept
        (where they were)."""

    def claim_relay(self) -> RelayPosition | None:
        """The relay's position, if this transaction got the relay (one relay at a time;
        ``None``: another one is publishing)."""

    def after(
        self, position: RelayPosition, limit: int
    ) -> tuple[list[PendingTransition], RelayPosition]:
        """Up to ``limit`` transitions after ``position``, oldest added first, and the
        position after them (Postgres: only transactions older than every running one)."""

    def move_relay(self, position: RelayPosition) -> None:
        """Record the relay's new position: the transitions up to it are published."""


class ChurnQueue(Protocol):
    """The churn model's pending people (derive's hook; the aggregates stage drains it)."""

    def queue_people(self, people: Iterable[tuple[str, Iterable[Any] | None, str]]) -> int:
        """Queue (person_id, days or None, group); the last queued per person wins; return
        how many people."""

    def pending(self) -> dict[str, tuple[str, list[date] | None]]:
        """The queued people: person id -> (group, sorted distinct days, or ``None``)."""


class AggregateDrains(Protocol):
    """The aggregates stage's queues: the survival aggregates and the churn model follow
    ``persons`` (each drain step is a transaction of its own)."""

    def drain_survival(self, limit: int) -> int:
        """Move up to ``limit`` queued persons to their current survival contribution;
        return how many (0: the queue is empty)."""

    def drain_churn(self, limit: int) -> int:
        """File up to ``limit`` people of the churn queue into the return-time counts;
        return how many."""

    def record_as_of(self, as_of: datetime, inactivity_window_days: int) -> None:
        """Move the aggregates' default as-of instant forward (never back)."""


@dataclass(frozen=True, slots=True)
class ProjectionStore:
    """Every seam object the projection stages use, over one backend (one transaction)."""

    raw_states: RawStates
    key_graph: KeyGraph
    queue: DeriveQueue
    progress: Progress
    read_models: ReadModelWrites
    outbox: TransitionsOutbox
    churn: ChurnQueue
