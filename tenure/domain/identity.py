"""Identity resolution: ``identity.linked`` says two person ids are one human.

The graph is a grow-only set of undirected links (a join-semilattice under set union).
The canonical id of a connected component is its lexicographically smallest id, so it
does not depend on the order in which links arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from tenure.domain.events import DomainEvent, IdentityLinked
from tenure.domain.person import PersonState, join_persons, rekey

Link = tuple[str, str]
"""An undirected link, stored with the smaller id first."""


def _link(first: str, second: str) -> Link:
    return (first, second) if first <= second else (second, first)


@dataclass(frozen=True, slots=True)
class IdentityGraph:
    """A grow-only set of identity links."""

    links: frozenset[Link] = frozenset()

    def with_link(self, person_id: str, alias_id: str) -> IdentityGraph:
        """The graph with one more link."""
        if person_id == alias_id:
            return self
        return IdentityGraph(self.links | {_link(person_id, alias_id)})

    def canonical_ids(self) -> dict[str, str]:
        """Every linked id mapped to its component's canonical (smallest) id."""
        parent: dict[str, str] = {}

        def root(node: str) -> str:
            parent.setdefault(node, node)
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        for first, second in self.links:
            a, b = root(first), root(second)
            if a != b:
                parent[max(a, b)] = min(a, b)
        return {node: root(node) for node in list(parent)}

    def canonical(self, person_id: str) -> str:
        """The canonical id of ``person_id``'s human (itself when it has no links)."""
        return self.canonical_ids().get(person_id, person_id)

    def component(self, person_id: str) -> frozenset[str]:
        """All ids of ``person_id``'s human, including itself."""
        ids = self.canonical_ids()
        canon = ids.get(person_id, person_id)
        return frozenset(node for node, root in ids.items() if root == canon) | {person_id}


def merge_identity(left: IdentityGraph, right: IdentityGraph) -> IdentityGraph:
    """Join two identity graphs (set union of links)."""
    return IdentityGraph(left.links | right.links)


def apply_identity(graph: IdentityGraph, event: DomainEvent) -> IdentityGraph:
    """Apply one event; only ``identity.linked`` changes the graph."""
    if isinstance(event, IdentityLinked):
        return graph.with_link(event.person_id, event.alias_id)
    return graph


def merge_component(
    canonical_id: str, states: Iterable[PersonState], members: Iterable[str] = ()
) -> PersonState:
    """Merge the states of one human's ids under its canonical id.

    ``members`` (the component's ids) are recorded as aliases even when they have no
    state of their own. If any state is erased the whole human is erased (erasure is
    absorbing).
    """
    parts = list(states)
    only = parts[0] if len(parts) == 1 else None
    if (
        only is not None
        and only.person_id == canonical_id
        and only.erased_at is None
        and canonical_id not in only.aliases
    ):
        merged = only  # joining one state alone gives the state itself
    else:
        merged = join_persons(canonical_id, (rekey(s, canonical_id) for s in parts))
    if merged.erased:
        return merged
    aliases = (merged.aliases | frozenset(members)) - {canonical_id}
    return merged if aliases == merged.aliases else replace(merged, aliases=aliases)


def resolve_persons(
    graph: IdentityGraph, states: Mapping[str, PersonState]
) -> dict[str, PersonState]:
    """Per-id states merged into one state per human, keyed by canonical id."""
    canonical = graph.canonical_ids()
    members: dict[str, set[str]] = {}
    for node, canon in canonical.items():
        members.setdefault(canon, set()).add(node)
    groups: dict[str, list[PersonState]] = {}
    for person_id in sorted(states):
        groups.setdefault(canonical.get(person_id, person_id), []).append(states[person_id])
    return {
        canon: merge_component(canon, group, members.get(canon, ()))
        for canon, group in sorted(groups.items())
    }
