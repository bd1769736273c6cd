"""Fold events and derive one person's view, for example-based tests."""

from __future__ import annotations

from collections.abc import Iterable

from tenure.domain import (
    DEFAULT_CONFIG,
    DomainEvent,
    LifecycleConfig,
    PersonView,
    fold,
    person_view_at,
)

from .scenario import at


def view_of(
    events: Iterable[DomainEvent],
    person_id: str,
    day: float,
    config: LifecycleConfig = DEFAULT_CONFIG,
) -> PersonView:
    """The view of ``person_id``'s human as of noon on ``day``."""
    world = fold(events)
    return person_view_at(world.persons[world.identity.canonical(person_id)], at(day), config)
