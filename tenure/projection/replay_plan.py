"""``tenure replay``'s plan: the archive cut into parts that fold, assemble and derive alone.

A person's view depends on its neighbourhood only (``tenure/domain/neighbourhood.py``): its
identity component, the devices that mention its ids and the ids those devices mention. So
the keys an event touches (its devices, its person ids as resolved, its record key) belong
together, and the connected components of "touched by one event" are independent: folding,
assembling and deriving each component alone gives exactly its rows in the fold of the
whole archive. The plan finds those components with a union-find over the keys the archive's
writer recorded beside its rows (:mod:`tenure.storage.archive_keys`: one row per distinct
record key and key it names, not per event), plus one cheap pass (inflate and decode only:
no events built, no states folded) over the payloads of rows archived before those were
recorded, and packs whole components into parts of at most ``capacity`` events (a
component larger than that is a part of its own). The replay then reads the archive part by part
(:func:`tenure.storage.archive.read_documents_by_part`), so what it holds is one part's
states, not the population's.

Reading more keys than the fold does only makes components larger (still correct), so the
key fields are read from wherever they appear in ``data`` and its items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg

from tenure.domain.events import EVENT_TYPES, later, parse_time
from tenure.projection.person_refs import PersonRefs
from tenure.projection.replay_fold import decodes_alike
from tenure.storage import archive, archive_keys
from tenure.storage.archive_keys import keys_of

BYTES_PER_EVENT = 400
"""Estimated replay memory per event of a part: its share of the part's raw states, the
assembled world and the rows (measured with ``tracemalloc``: docs/design/replay-cost.md)."""


def part_capacity(memory_mb: float) -> int:
    """Events per part for a replay memory bound of ``memory_mb`` MiB."""
    return max(1, int(memory_mb * (1 << 20)) // BYTES_PER_EVENT)


def _time_of(body: Any) -> datetime | None:
    """The event time of a decoded envelope of a known type, if it parses."""
    if not isinstance(body, dict) or body.get("type") not in EVENT_TYPES:
        return None
    try:
        return parse_time(str(body["time"]))
    except (KeyError, ValueError):
        return None


def node(kind: str, name: str) -> int:
    """The union-find node of a key: the hash of its kind (``k`` record key, ``d`` device,
    ``p`` person) and name. An int is a third of a string's memory; two keys with one hash
    only join two components (still correct: parts of whole components)."""
    return hash(kind + name)


@dataclass(slots=True)
class Components:
    """A union-find over key nodes (:func:`node`), with the events counted per component."""

    parent: dict[int, int] = field(default_factory=dict)
    events: dict[int, int] = field(default_factory=dict)
    """Per root: the events whose keys are in its component."""

    def find(self, node: int) -> int:
        """The root of ``node``'s component (``node`` is added if new)."""
        parent = self.parent
        root = parent.setdefault(node, node)
        while (up := parent[root]) != root:
            root = up
        while node != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    def join(self, nodes: list[int]) -> None:
        """Put ``nodes`` (one event's keys, its record key first) in one component and
        count the event there."""
        events = self.events
        root = self.find(nodes[0])
        weight = events.pop(root, 0) + 1
        for node in nodes[1:]:
            other = self.find(node)
            if other != root:
                self.parent[other] = root
                weight += events.pop(other, 0)
        events[root] = weight

    def union(self, nodes: list[int]) -> None:
        """Put ``nodes`` in one component (no event counted)."""
        find, parent, events = self.find, self.parent, self.events
        root = find(nodes[0])
        for node in nodes[1:]:
            other = find(node)
            if other != root:
                parent[other] = root
                if other in events:
                    events[root] = events.get(root, 0) + events.pop(other)

    def count(self, node: int, events: int) -> None:
        """Count ``events`` more events in ``node``'s component."""
        root = self.find(node)
        self.events[root] = self.events.get(root, 0) + events

    def absorb(self, other: Components) -> None:
        """Join ``other``'s components (from other events) into these, with their events."""
        find, parent, events = self.find, self.parent, self.events
        for node, up in other.parent.items():
            if node == up:
                find(node)
                continue
            root, under = find(up), find(node)
            if root != under:
                parent[under] = root
                if under in events:
                    events[root] = events.get(root, 0) + events.pop(under)
        for root, weight in other.events.items():
            top = find(root)
            events[top] = events.get(top, 0) + weight


@dataclass(slots=True)
class RangePlan:
    """The components of the events of one seq range (a worker's share of the plan)."""

    components: Components
    latest: datetime | None
    rows: int
    unnamed: int = 0
    """Rows of the range left out: their keys were not recorded (:func:`plan_named`)."""


@dataclass(slots=True)
class Plan:
    """Which part each record key's events belong to."""

    components: Components
    capacity: int
    latest: datetime | None
    """The latest event time among events of known types (the fold's latest unless such an
    event is dead-lettered; the replay checks)."""
    rows: int
    part_of_root: dict[int, int] = field(default_factory=dict)
    parts: int = 0
    """How many parts there are (set by :meth:`pack`)."""
    sizes: dict[int, int] = field(default_factory=dict)
    """Events per part (set by :meth:`pack`)."""

    def pack(self) -> None:
        """Assign whole components to parts of at most :attr:`capacity` events."""
        part, filled = 0, 0
        for root, weight in self.components.events.items():
            if filled and filled + weight > self.capacity:
                self.sizes[part] = filled
                part, filled = part + 1, 0
            self.part_of_root[root] = part
            filled += weight
        if self.part_of_root:
            self.sizes[part] = filled
        self.parts = part + 1 if self.part_of_root else 0

    def release(self) -> None:
        """Forget the components (once every record key has its part): the replay keeps
        only :attr:`parts` and :attr:`latest`."""
        self.components = Components()
        self.part_of_root = {}

    def record_parts(self, record_keys: Iterable[str]) -> Iterator[tuple[str, int]]:
        """``(record key, part)`` of each of ``record_keys`` (every one the plan read)."""
        find, part_of_root = self.components.find, self.part_of_root
        for record_key in record_keys:
            yield record_key, part_of_root[find(node("k", record_key))]


def plan_range(
    conn: psycopg.Connection[Any],
    first_seq: int,
    last_seq: int,
    refs: PersonRefs,
    on_chunk: Callable[[int], None] = lambda rows: None,
    *,
    unnamed_only: bool = False,
) -> RangePlan:
    """The components of the archive rows ``first_seq..last_seq`` (in ``conn``'s snapshot;
    ``unnamed_only``: of those whose keys are not recorded), from their payloads."""
    components = Components()
    latest: datetime | None = None
    rows = 0
    loads = orjson.loads
    chunks = archive.read_bodies(conn, first_seq, last_seq, unnamed_only=unnamed_only)
    for chunk in chunks:
        named: list[tuple[str, list[str], list[str]]] = []
        values: set[str] = set()
        for record_key, text in chunk:
            try:
                body = loads(text) if decodes_alike(text) else json.loads(text)
            except ValueError:
                body = None
            devices, persons = keys_of(body)
            named.append((record_key, devices, persons))
            values.update(persons)
            latest = later(latest, _time_of(body))
        resolved = refs.resolve_names(conn, values)
        for record_key, devices, persons in named:
            nodes = [hash("k" + record_key)]
            nodes += [hash("d" + d) for d in devices]
            nodes += [hash("p" + resolved.get(p, p)) for p in persons]
            components.join(nodes)
        rows += len(chunk)
        on_chunk(len(chunk))
    return RangePlan(components, latest, rows)


def plan_named(
    conn: psycopg.Connection[Any],
    first_seq: int,
    last_seq: int,
    refs: PersonRefs,
    record_keys: list[str] | None = None,
) -> RangePlan:
    """The components of the archive rows ``first_seq..last_seq`` whose keys are recorded
    (:mod:`tenure.storage.archive_keys`), from the record alone: each distinct (record key,
    device or person) once, and the events counted per record key. The keys recorded for a
    record key are every key its events named (in ``conn``'s snapshot: no more rows than
    that), so its component is the one the payloads would give. :attr:`RangePlan.unnamed`
    counts the rows without recorded keys (:func:`plan_range` reads those);
    ``record_keys``, when given, receives every record key of the rows."""
    components = Components()
    rows = unnamed = 0
    for record_key, named, without in archive_keys.record_key_events(conn, first_seq, last_seq):
        if named:
            components.count(hash("k" + record_key), named)
        rows += named
        unnamed += without
        if record_keys is not None:
            record_keys.append(record_key)
    for page in archive_keys.names(conn):
        resolved = refs.resolve_names(
            conn, {name for _, kind, name in page if kind == archive_keys.PERSON}
        )
        for record_key, kind, name in page:
            if kind == archive_keys.PERSON:
                other = hash("p" + resolved.get(name, name))
            else:
                other = hash("d" + name)
            components.union([hash("k" + record_key), other])
    return RangePlan(components, archive_keys.latest(conn), rows, unnamed)


def packed(ranges: list[RangePlan], capacity: int) -> Plan:
    """The plan of every range's events, in parts of at most ``capacity`` events (``ranges``
    is emptied: the first range's components take in the others')."""
    first = ranges.pop(0)
    components, latest, rows = first.components, first.latest, first.rows
    while ranges:
        other = ranges.pop(0)
        components.absorb(other.components)
        rows += other.rows
        latest = later(latest, other.latest)
        del other
    planned = Plan(components, capacity, latest, rows)
    planned.pack()
    return planned


def plan(
    conn: psycopg.Connection[Any],
    first_seq: int,
    last_seq: int,
    capacity: int,
    refs: PersonRefs,
    on_chunk: Callable[[int], None] = lambda rows: None,
) -> Plan:
    """The components of the archive rows ``first_seq..last_seq`` (in ``conn``'s snapshot),
    packed into parts of at most ``capacity`` events: from the recorded keys
    (:func:`plan_named`) and the payloads of the rows archived before they were recorded."""
    ranges = [plan_named(conn, first_seq, last_seq, refs)]
    if ranges[0].unnamed:
        ranges.append(plan_range(conn, first_seq, last_seq, refs, on_chunk, unnamed_only=True))
    return packed(ranges, capacity)
