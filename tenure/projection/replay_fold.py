"""``tenure replay``'s first stage: the archive folded into raw states, chunk by chunk.

The archive (or one part of it, :mod:`tenure.projection.replay_plan`) is read in chunks
through a server-side cursor: memory holds one chunk of events and the raw states folded so
far, never the whole archive. Per chunk the envelopes are decoded with orjson, their person
ids resolved from their tokens in the decoded envelopes, and screened cheaply (see
:func:`screen_documents`), and the events folded into the raw states with the live apply
stage's per-key functions (``fold_device_events`` with the state so far as base,
``join_persons``). :func:`join_ranges` joins folded ranges per key (the fold is a join, so
this equals folding every event at once) and builds the identity graph.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg

from tenure.domain.device import DeviceState, fold_device_events, join_devices
from tenure.domain.events import DeviceUsed, DomainEvent, later, parse_event
from tenure.domain.identity import IdentityGraph
from tenure.domain.neighbourhood import RawWorld, group_by_key
from tenure.domain.person import PersonState, join_persons
from tenure.domain.pseudonymity import PERSON_FIELDS, person_ids_named, rename_event
from tenure.eventlog.deadletter import DeadLetter
from tenure.projection.catch_up import screen_archived
from tenure.projection.person_refs import PersonRefs
from tenure.projection.screen import unstorable
from tenure.storage import archive
from tenure.storage.archive import ArchivedDocument, ArchivedEvent

CHUNK = 20_000
"""Archive rows decoded and folded at a time (per worker)."""
FEW_COLLECTIONS = (100_000, 50, 100)
"""Garbage collector thresholds while replaying: the fold allocates millions of objects that
live on (states), few of them in cycles; the default thresholds walk the growing heap again
and again (as in the projector worker, docs/design/projector-throughput.md)."""


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
        folded.latest = later(folded.latest, max(e.at for e in events))


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
        totals.latest = later(totals.latest, part.latest)
        del part
    graph = IdentityGraph()
    for person_id, alias_id in sorted(links):
        graph = graph.with_link(person_id, alias_id)
    return RawWorld(devices=devices, person_states=persons, identity=graph), totals
