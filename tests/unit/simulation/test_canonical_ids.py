"""The demo's linked ids keep the person a user created as the canonical one.

A human's canonical id is the smallest id of its identity component
(``IdentityGraph.canonical_ids``); the simulation names a second identifier so that it
sorts after every person id, so the id a demo user sees first stays the row's id.
"""

from __future__ import annotations

from tenure.domain import IdentityLinked, fold
from tenure.domain.events import parse_event
from tenure.simulation import SimulationParameters, simulate
from tenure.simulation.identifiers import Identifiers


def test_every_canonical_person_is_the_id_the_simulation_created_it_with() -> None:
    sim = simulate(SimulationParameters(people=400, seed=11, identity_link_rate=0.5))
    created = {life.person_id for life in sim.lives}
    events = [parse_event(d.envelope) for d in sim.deliveries]
    links = [e for e in events if isinstance(e, IdentityLinked)]
    assert len(links) > 50  # the population links many second identifiers
    world = fold(events)
    linked = {world.identity.canonical(link.person_id) for link in links}
    assert linked and linked <= created
    assert set(world.persons) <= created
    assert all(world.identity.canonical(link.alias_id) == link.person_id for link in links)


def test_a_second_identifier_sorts_after_every_person_id() -> None:
    ids = Identifiers(seed=3, source_prefix="demo")
    keys = [f"p{i}" for i in range(200)]
    assert max(ids.person(k) for k in keys) < min(ids.alias(k) for k in keys)
