"""Resolving one human from the part of the world it depends on.

The streaming projector keeps *raw* states (per device, per person id, identity links:
plain merges of events, before :func:`tenure.domain.world.assemble`). To derive one human
it loads only its neighbourhood and assembles that:

1. the human's ids (its identity component);
2. every device that mentions one of them (their contributions and redaction);
3. every person id those devices mention, with their components (an erased id mentioned
   by a shared device changes what the device contributes);
4. the raw states of all those ids, and the links among them.

Assembling the neighbourhood gives exactly the human's state in the fold of the whole
world (property-tested), so the live projection equals the batch replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tenure.domain.device import DeviceState, device_ids_of, device_singleton, join_devices
from tenure.domain.events import DeviceUsed, DomainEvent, IdentityLinked
from tenure.domain.identity import IdentityGraph
from tenure.domain.lattice import frozen_map
from tenure.domain.person import PersonState, join_persons, person_ids_of, person_singleton


@dataclass(frozen=True, slots=True)
class RawWorld:
    """Per-key merged states before assembly (no contributions, erasure or identity)."""

    devices: Mapping[str, DeviceState] = field(default_factory=frozen_map)
    person_states: Mapping[str, PersonState] = field(default_factory=frozen_map)
    identity: IdentityGraph = field(default_factory=IdentityGraph)


@dataclass(slots=True)
class KeyedFacts:
    """Events split into single-event states per device and per person id, and links."""

    devices: dict[str, list[DeviceState]] = field(default_factory=dict)
    persons: dict[str, list[PersonState]] = field(default_factory=dict)
    links: list[IdentityLinked] = field(default_factory=list)


def split_by_key(events: Iterable[DomainEvent]) -> KeyedFacts:
    """Route each event to the device and person keys it is about."""
    facts = KeyedFacts()
    for event in events:
        for device_id in device_ids_of(event):
            facts.devices.setdefault(device_id, []).append(device_singleton(device_id, event))
        for person_id in person_ids_of(event):
            facts.persons.setdefault(person_id, []).append(person_singleton(person_id, event))
        if isinstance(event, IdentityLinked):
            facts.links.append(event)
    return facts


@dataclass(slots=True)
class KeyedBatch:
    """A batch routed to its keys: device events per device, single-event person states
    per person id, and links (the projector's input to :func:`fold_device_events` and
    :func:`join_persons`)."""

    devices: dict[str, list[DomainEvent]] = field(default_factory=dict)
    persons: dict[str, list[PersonState]] = field(default_factory=dict)
    links: list[IdentityLinked] = field(default_factory=list)


def group_by_key(events: Iterable[DomainEvent]) -> KeyedBatch:
    """Route each event to the device and person keys it is about (as :func:`split_by_key`)."""
    batch = KeyedBatch()
    devices, persons = batch.devices, batch.persons
    for event in events:
        if type(event) is DeviceUsed:  # most events: one device, no person key
            devices.setdefault(event.device_id, []).append(event)
            continue
        for device_id in device_ids_of(event):
            devices.setdefault(device_id, []).append(event)
        for person_id in person_ids_of(event):
            persons.setdefault(person_id, []).append(person_singleton(person_id, event))
        if isinstance(event, IdentityLinked):
            batch.links.append(event)
    return batch


def raw_fold(events: Iterable[DomainEvent]) -> RawWorld:
    """Merge events per device and per person id, and collect identity links."""
    facts = split_by_key(events)
    device_parts, person_parts = facts.devices, facts.persons
    links = IdentityGraph()
    for link in facts.links:
        links = links.with_link(link.person_id, link.alias_id)
    return RawWorld(
        devices={d: join_devices(d, parts) for d, parts in device_parts.items()},
        person_states={p: join_persons(p, parts) for p, parts in person_parts.items()},
        identity=links,
    )


def component_of(graph: IdentityGraph, person_ids: Iterable[str]) -> frozenset[str]:
    """Every id in the identity components of ``person_ids``."""
    canonical = graph.canonical_ids()
    roots = {canonical.get(p, p) for p in person_ids}
    return frozenset(n for n, root in canonical.items() if root in roots) | frozenset(person_ids)


def mentioning_devices(
    devices: Mapping[str, DeviceState], person_ids: frozenset[str]
) -> frozenset[str]:
    """Ids of devices whose state mentions any of ``person_ids``."""
    return frozenset(d for d, state in devices.items() if state.person_ids & person_ids)


def neighbourhood(raw: RawWorld, person_id: str) -> RawWorld:
    """The part of ``raw`` that the human of ``person_id`` depends on."""
    human = component_of(raw.identity, [person_id])
    device_ids = mentioning_devices(raw.devices, human)
    mentioned = frozenset().union(*(raw.devices[d].person_ids for d in device_ids))
    ids = component_of(raw.identity, human | mentioned)
    links = IdentityGraph(frozenset(link for link in raw.identity.links if set(link) <= ids))
    return RawWorld(
        devices={d: raw.devices[d] for d in device_ids},
        person_states={p: s for p, s in raw.person_states.items() if p in ids},
        identity=links,
    )


def device_neighbourhood(raw: RawWorld, device_id: str) -> RawWorld:
    """The part of ``raw`` that the (redacted) view of one device depends on."""
    device = raw.devices[device_id]
    ids = component_of(raw.identity, device.person_ids)
    links = IdentityGraph(frozenset(link for link in raw.identity.links if set(link) <= ids))
    return RawWorld(
        devices={device_id: device},
        person_states={p: s for p, s in raw.person_states.items() if p in ids},
        identity=links,
    )


class NeighbourhoodIndex:
    """Answers :func:`neighbourhood` and :func:`device_neighbourhood` for many keys of one
    raw world without rescanning it per key (the derive stage asks for hundreds per pass).

    The mentions of every device and the identity components are computed once; each
    answer equals the unindexed function's (property-tested).
    """

    def __init__(self, raw: RawWorld) -> None:
        self.raw = raw
        self.canonical = raw.identity.canonical_ids()
        self.members: dict[str, set[str]] = {}
        for node, root in self.canonical.items():
            self.members.setdefault(root, set()).add(node)
        self.mentions = {d: state.person_ids for d, state in raw.devices.items()}
        self.mentioning: dict[str, set[str]] = {}
        for device_id, ids in self.mentions.items():
            for person_id in ids:
                self.mentioning.setdefault(person_id, set()).add(device_id)
        self.links_of: dict[str, list[tuple[str, str]]] = {}
        for link in raw.identity.links:
            first = link[0]
            self.links_of.setdefault(self.canonical.get(first, first), []).append(link)

    def component(self, person_ids: Iterable[str]) -> frozenset[str]:
        """As :func:`component_of` on the raw world's identity graph."""
        ids = set(person_ids)
        out = set(ids)
        for p in ids:
            root = self.canonical.get(p)
            if root is not None:
                out |= self.members[root]
        return frozenset(out)

    def _part(self, device_ids: Iterable[str], ids: frozenset[str]) -> RawWorld:
        states = self.raw.person_states
        roots = {self.canonical.get(p, p) for p in ids}
        links = frozenset(
            link for r in roots for link in self.links_of.get(r, ()) if set(link) <= ids
        )
        return RawWorld(
            devices={d: self.raw.devices[d] for d in device_ids},
            person_states={p: states[p] for p in ids if p in states},
            identity=IdentityGraph(links),
        )

    def neighbourhood(self, person_id: str) -> RawWorld:
        """As :func:`neighbourhood` of ``person_id``."""
        human = self.component([person_id])
        device_ids = set().union(*(self.mentioning.get(p, ()) for p in human))
        mentioned = frozenset().union(*(self.mentions[d] for d in device_ids))
        return self._part(device_ids, self.component(human | mentioned))

    def device_neighbourhood(self, device_id: str) -> RawWorld:
        """As :func:`device_neighbourhood` of ``device_id``."""
        return self._part([device_id], self.component(self.mentions[device_id]))
