"""``tenure replay``'s first stage: the archive folded into raw states, chunk by chunk.

The archive is read in seq ranges (one, or one per worker process, each importing the
replay's snapshot so all see the same rows), and each range in chunks through a
server-side cursor: memory holds one chunk of events and the raw states folded so far, never the
whole archive (a planned replay folds one part's rows the same way, chunk by chunk). Per
chunk the envelopes are decoded with orjson, their person ids resolved from their tokens in
the decoded envelopes, and screened cheaply (see :func:`screen_documents`), and the events folded
into the range's raw states with the live apply stage's per-key functions
(``fold_device_events`` with the state so far as base, ``join_persons``). The ranges'
raw states are then joined per key (:func:`join_ranges`): the fold is a join, so this
equals folding every event at once.
"""

from __future__ import annotations

import copyreg
import gc
import json
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import orjson
import psycopg

from tenure.domain.device import DeviceState, fold_device_events, join_devices
from tenure.domain.events import DeviceUsed, DomainEvent, parse_event
from tenure.domain.identity import IdentityGraph
from tenure.domain.lattice import frozen_map
from tenure.domain.neighbourhood import RawWorld, group_by_key
from tenure.domain.person import PersonState, join_persons
from tenure.domain.pseudonymity import PERSON_FIELDS, person_ids_named, rename_event
from tenure.eventlog.deadletter import DeadLetter
from tenure.projection.catch_up import screen_archived
from tenure.projection.person_refs import PersonRefs
from tenure.projection.screen import unstorable
from tenure.storage import archive, snapshots
from tenure.storage.archive import ArchivedDocument, ArchivedEvent

CHUNK = 20_000
"""Archive rows decoded and folded at a time (per worker)."""
FEW_COLLECTIONS = (100_000, 50, 100)
"""Garbage collector thresholds while replaying: the fold allocates millions of objects that
live on (states), few of them in cycles; the default thresholds walk the growing heap again
and again (as in the projector worker, docs/design/projector-throughput.md)."""


def _reduce_frozen_map(mapping: MappingProxyType[Any, Any]) -> tuple[Any, tuple[Any, ...]]:
    return frozen_map, (dict(mapping),)


# The raw states hold read-only maps (``frozen_map``); the standard library cannot pickle
# them, and worker processes send their states back pickled.
copyreg.pickle(MappingProxyType, _reduce_frozen_map)

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def decodes_alike(document: bytes) -> bool:
    """Whether orjson decodes ``document`` exactly as the standard library does: it has no
    run of 19 or more digits (orjson reads an integer beyond 64 bits as a float; shorter
    integers, floats and strings decode the same; JSON that only the standard library
    accepts, such as ``NaN``, fails orjson and takes the exact path). Half a microsecond,
    where a regular expression for the same takes several."""
    return _LONG_NUMBER not in document.translate(_DIGITS_AS_ZERO)


_INFINITIES = (float("inf"), float("-inf"))


def storable(event: DomainEvent) -> bool:
    """Whether ``unstorable(event)`` is ``None``
    (:func:`~tenure.projection.screen.unstorable`); for a ``DeviceUsed`` (most events) the
    same checks written out for its fields (no NUL in a string, a finite duration), a
    quarter of the generic walk's cost."""
    if type(event) is not DeviceUsed:
        return unstorable(event) is None
    assert isinstance(event, DeviceUsed)
    duration = event.duration_s
    if duration is not None and (duration != duration or duration in _INFINITIES):
        return False
    source, event_id = event.event_id
    return not any(
        value is not None and "\x00" in value
        for value in (source, event_id, event.device_id, event.person_id, event.feature)
    )


@dataclass(slots=True)
class FoldedRange:
    """The raw states folded from one seq range of the archive, and what it read."""

    devices: dict[str, DeviceState] = field(default_factory=dict)
    persons: dict[str, PersonState] = field(default_factory=dict)
    links: set[tuple[str, str]] = field(default_factory=set)
    events: int = 0
    latest: datetime | None = None
    dead: list[DeadLetter] = field(default_factory=list)


def screen_documents(
    rows: Sequence[ArchivedDocument], names: Resolver | None = None
) -> tuple[list[DomainEvent], list[DeadLetter]]:
    """Decode archived envelopes into events; those that are not events, or carry a value
    the projection cannot store, become dead letters.

    The same as :func:`~tenure.projection.catch_up.screen_archived` of the rows decoded by
    the standard library (the live catch-up's path), faster: an envelope that
    :func:`decodes_alike` is decoded with orjson; one that fails to parse or to pass
    :func:`~tenure.projection.screen.unstorable` (:func:`storable`), or any other, takes
    the exact path (which writes its dead letter).

    ``names``: the person ids of the events resolved as
    :meth:`~tenure.projection.person_refs.PersonRefs.resolve` resolves them, the orjson-decoded
    ones in their envelopes before they are parsed (building each event once, not twice).
    """
    events: list[DomainEvent] = []
    dead: list[DeadLetter] = []
    loads = orjson.loads
    decoded: list[tuple[ArchivedDocument, Any]] = []
    for row in rows:
        document = row.document
        envelope: Any = None
        if decodes_alike(document):
            try:
                envelope = loads(document)
            except ValueError:
                envelope = None  # the exact path says why
        decoded.append((row, envelope))
    if names is not None:
        _rename_envelopes([envelope for _, envelope in decoded], names)
    exact: list[int] = []
    """Positions in ``events`` of events taken by the exact path."""
    for row, envelope in decoded:
        if envelope is not None:
            try:
                event: DomainEvent | None = parse_event(envelope)
            except (ValueError, KeyError, TypeError, AttributeError):
                event = None  # the exact path says why
            if event is not None and storable(event):
                events.append(event)
                continue
        document = row.document
        try:
            whole = json.loads(document)
        except ValueError as exc:
            whole = {"undecodable": document.decode(errors="replace"), "error": str(exc)}
        archived = ArchivedEvent(row.seq, whole, row.topic, row.partition, row.record_key)
        kept, letters = screen_archived([archived])
        exact += range(len(events), len(events) + len(kept))
        events += [e for _, e in kept]
        dead += letters
    if exact and names is not None:  # the exact path's events (few) resolved as a batch
        mapping = names({v for n in exact for v in person_ids_named(events[n])})
        for n in exact:
            events[n] = rename_event(events[n], mapping)
    return events, dead


Resolver = Callable[[set[str]], Mapping[str, str]]
"""What person ids (or tokens) resolve to, for those that change."""


def _rename_envelopes(envelopes: Sequence[Any], names: Resolver) -> None:
    """Replace the person ids in the ``data`` of decoded envelopes by what they resolve to
    (``str`` of each value, as the parse reads it), in place."""
    datas = [d for e in envelopes if isinstance(e, dict) and isinstance(d := e.get("data"), dict)]
    values = {str(v) for d in datas for f in PERSON_FIELDS if (v := d.get(f)) is not None}
    mapping = names(values) if values else {}
    if not mapping:
        return
    for data in datas:
        for name in PERSON_FIELDS:
            value = data.get(name)
            if value is not None and (renamed := mapping.get(str(value))) is not None:
                data[name] = renamed


def fold_chunk(folded: FoldedRange, events: Sequence[DomainEvent]) -> None:
    """Fold ``events`` into ``folded`` (per key, as the live apply stage folds a batch)."""
    batch = group_by_key(events)
    devices, persons = folded.devices, folded.persons
    for device_id, device_events in batch.devices.items():
        devices[device_id] = fold_device_events(device_id, devices.get(device_id), device_events)
    for person_id, parts in batch.persons.items():
        base = persons.get(person_id)
        persons[person_id] = join_persons(person_id, parts if base is None else [base, *parts])
    folded.links.update((link.person_id, link.alias_id) for link in batch.links)
    folded.events += len(events)
    if events:
        latest = max(e.at for e in events)
        if folded.latest is None or latest > folded.latest:
            folded.latest = latest


def fold_documents(
    conn: psycopg.Connection[Any],
    first_seq: int,
    last_seq: int,
    on_chunk: Callable[[int], None] = lambda rows: None,
) -> FoldedRange:
    """Fold the archive rows ``first_seq..last_seq`` in ``conn``'s transaction."""
    folded = FoldedRange()
    refs = PersonRefs()
    for chunk in archive.read_documents(conn, first_seq, last_seq, CHUNK):
        fold_documents_chunk(conn, refs, folded, chunk)
        on_chunk(len(chunk))
    return folded


def fold_documents_chunk(
    conn: psycopg.Connection[Any],
    refs: PersonRefs,
    folded: FoldedRange,
    chunk: Sequence[ArchivedDocument],
) -> None:
    """Screen, resolve (tokens -> person ids) and fold one chunk of archive rows."""
    events, dead = screen_documents(chunk, lambda values: refs.resolve_names(conn, values))
    folded.dead += dead
    fold_chunk(folded, events)


def _fold_range_in_worker(
    database_url: str, snapshot: str, first_seq: int, last_seq: int
) -> FoldedRange:
    gc.set_threshold(*FEW_COLLECTIONS)
    with psycopg.connect(database_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            snapshots.use(conn, snapshot)
            return fold_documents(conn, first_seq, last_seq)


def seq_ranges(first_seq: int, last_seq: int, parts: int) -> list[tuple[int, int]]:
    """``first_seq..last_seq`` cut into ``parts`` contiguous ranges (fewer if it is short)."""
    span = last_seq - first_seq + 1
    parts = max(1, min(parts, span))
    cuts = [first_seq + span * i // parts for i in range(parts + 1)]
    return [(cuts[i], cuts[i + 1] - 1) for i in range(parts)]


def fold_in_workers(
    database_url: str, snapshot: str, first_seq: int, last_seq: int, workers: int
) -> list[FoldedRange]:
    """Fold the archive's seq ranges in ``workers`` processes, all in ``snapshot``."""
    ranges = seq_ranges(first_seq, last_seq, workers)
    context = multiprocessing.get_context("fork" if "fork" in _methods() else "spawn")
    with ProcessPoolExecutor(max_workers=len(ranges), mp_context=context) as pool:
        futures = [
            pool.submit(_fold_range_in_worker, database_url, snapshot, first, last)
            for first, last in ranges
        ]
        return [f.result() for f in futures]


def _methods() -> list[str]:
    return multiprocessing.get_all_start_methods()


def join_ranges(parts: list[FoldedRange]) -> tuple[RawWorld, FoldedRange]:
    """The raw world of every range joined per key, and the ranges' totals (events, latest
    event time, dead letters) in a :class:`FoldedRange` without states. ``parts`` is
    emptied as it is joined (each range's states are released once joined)."""
    totals = FoldedRange()
    devices: dict[str, DeviceState] = {}
    persons: dict[str, PersonState] = {}
    links: set[tuple[str, str]] = set()
    while parts:
        part = parts.pop(0)
        for device_id, state in part.devices.items():
            known = devices.get(device_id)
            devices[device_id] = state if known is None else join_devices(device_id, (known, state))
        for person_id, person in part.persons.items():
            had = persons.get(person_id)
            persons[person_id] = person if had is None else join_persons(person_id, (had, person))
        links |= part.links
        totals.events += part.events
        totals.dead += part.dead
        if part.latest is not None and (totals.latest is None or part.latest > totals.latest):
            totals.latest = part.latest
        del part
    graph = IdentityGraph()
    for person_id, alias_id in sorted(links):
        graph = graph.with_link(person_id, alias_id)
    return RawWorld(devices=devices, person_states=persons, identity=graph), totals
