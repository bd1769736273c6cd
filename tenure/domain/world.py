"""The whole world as one pure fold: devices, per-id person states, identity, humans.

The batch replay and the tests use :func:`fold`; the streaming workers call the same
per-key functions (``apply_device``, ``device_contributions``, ``apply_person``,
``with_device_contribution``, ``merge_component``). :func:`assemble` is the part the
stream spreads over workers: erasure propagation, contribution push and identity
resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tenure.domain.config import LifecycleConfig
from tenure.domain.contribution import device_contributions
from tenure.domain.device import (
    DeviceState,
    erase_from_device,
    join_devices,
)
from tenure.domain.events import DomainEvent
from tenure.domain.identity import IdentityGraph, merge_identity, resolve_persons
from tenure.domain.lattice import frozen_map
from tenure.domain.person import (
    PersonState,
    erased_person,
    join_persons,
    with_device_contribution,
)
from tenure.domain.view import DEFAULT_CONFIG, PersonView, person_view_at


@dataclass(frozen=True, slots=True)
class World:
    """Every projection state derived from a set of events."""

    devices: Mapping[str, DeviceState] = field(default_factory=frozen_map)
    person_states: Mapping[str, PersonState] = field(default_factory=frozen_map)
    """Per person id (aliases included), with device contributions pushed in."""
    identity: IdentityGraph = field(default_factory=IdentityGraph)
    persons: Mapping[str, PersonState] = field(default_factory=frozen_map)
    """Per human (canonical id), identity resolved; erased humans are tombstones."""


def _erased_ids(states: Mapping[str, PersonState], graph: IdentityGraph) -> dict[str, datetime]:
    """Every id of every human that has an erased id, with the erasure time."""
    erased: dict[str, datetime] = {}
    for person_id, state in states.items():
        if state.erased_at is None:
            continue
        for member in graph.component(person_id):
            erased[member] = min(state.erased_at, erased.get(member, state.erased_at))
    return erased


def assemble(
    devices: Mapping[str, DeviceState],
    person_states: Mapping[str, PersonState],
    identity: IdentityGraph,
) -> World:
    """Propagate erasures, push device contributions and resolve identities.

    1. An erased id erases its whole human: every member id becomes a tombstone and is
       redacted from every device that mentions it.
    2. Every device's contributions are pushed, with the device version, into the
       state of each person id it mentions.
    3. Per-id states are merged per human under the canonical id.
    """
    erased = _erased_ids(person_states, identity)
    people = dict(person_states)
    for person_id, at in erased.items():
        current = people.get(person_id, PersonState(person_id))
        people[person_id] = join_persons(person_id, (current, erased_person(person_id, at)))
    redacted: dict[str, DeviceState] = {}
    for device_id, device in sorted(devices.items()):
        gone = device.person_ids.intersection(erased)  # a frozenset (`& keys()` makes a set)
        redacted[device_id] = erase_from_device(device, gone) if gone else device
    for device in redacted.values():
        version = device.version
        for person_id, contribution in device_contributions(device).items():
            current = people.get(person_id, PersonState(person_id))
            people[person_id] = with_device_contribution(current, version, contribution)
    ordered = dict(sorted(people.items()))
    return World(
        devices=frozen_map(redacted),
        person_states=frozen_map(ordered),
        identity=identity,
        persons=frozen_map(resolve_persons(identity, ordered)),
    )


def fold(events: Iterable[DomainEvent]) -> World:
    """Fold a set of events into a world (order and duplicates do not matter)."""
    from tenure.domain.neighbourhood import raw_fold

    raw = raw_fold(events)
    return assemble(raw.devices, raw.person_states, raw.identity)


def merge_world(left: World, right: World) -> World:
    """Join two worlds (e.g. replays of two halves of the log): equals folding both."""
    devices = {
        d: join_devices(
            d, [s for s in (left.devices.get(d), right.devices.get(d)) if s is not None]
        )
        for d in left.devices.keys() | right.devices.keys()
    }
    persons = {
        p: join_persons(
            p, [s for s in (left.person_states.get(p), right.person_states.get(p)) if s is not None]
        )
        for p in left.person_states.keys() | right.person_states.keys()
    }
    return assemble(devices, persons, merge_identity(left.identity, right.identity))


def views(
    world: World, as_of: datetime, config: LifecycleConfig = DEFAULT_CONFIG
) -> dict[str, PersonView]:
    """The derived view of every human that is not erased, keyed by canonical id."""
    return {
        person_id: person_view_at(state, as_of, config)
        for person_id, state in world.persons.items()
        if not state.erased
    }
