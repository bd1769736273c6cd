"""Per-device state (keyed by device_id): a grow-only join-semilattice of device facts.

The state records activations, deactivations, purchases naming the device and uses per
day, plus tombstones of erased people. Everything else about the device (its product, its
user, its payer) is read from those facts, so applying an event is idempotent,
commutative and associative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from tenure.domain.erasure import ERASED, redact, tombstone_of
from tenure.domain.events import (
    DeviceActivated,
    DeviceDeactivated,
    DeviceUsed,
    DomainEvent,
    EventId,
    PaymentCompleted,
    PersonErasureRequested,
)
from tenure.domain.knowledge import device_version
from tenure.domain.lattice import DaySpan, frozen_map, join_maps, join_spans

UseKey = tuple[date, str | None]
"""A day of use and the person the use event named (``None``: not named)."""

DeviceVersion = tuple[int, int, int]
"""Strictly monotone rank of a device state: (tombstones, facts, total span length).

See :func:`tenure.domain.knowledge.device_version`.
"""


@dataclass(frozen=True, slots=True, order=True)
class Activation:
    """The device was bound to ``person_id`` at ``at``."""

    at: datetime
    event_id: EventId
    person_id: str
    product: str


@dataclass(frozen=True, slots=True, order=True)
class Deactivation:
    """The device was unbound from its user at ``at``."""

    at: datetime
    event_id: EventId
    reason: str


@dataclass(frozen=True, slots=True, order=True)
class DevicePurchase:
    """An order with an item naming the device."""

    at: datetime
    order_id: str
    event_id: EventId
    payer_id: str
    beneficiary_id: str | None


@dataclass(frozen=True, slots=True)
class DeviceState:
    """Everything known about one device, as a join-semilattice."""

    device_id: str
    activations: frozenset[Activation] = frozenset()
    deactivations: frozenset[Deactivation] = frozenset()
    purchases: frozenset[DevicePurchase] = frozenset()
    uses: Mapping[UseKey, DaySpan] = field(default_factory=frozen_map)
    tombstones: frozenset[str] = frozenset()

    @property
    def product(self) -> str | None:
        """Product named by the earliest activation (ties: smallest event id)."""
        return min(self.activations).product if self.activations else None

    @property
    def activated_at(self) -> datetime | None:
        """Time of the first activation."""
        return min(self.activations).at if self.activations else None

    @property
    def purchase(self) -> DevicePurchase | None:
        """The purchase that made the device: earliest by event time, ties by order id."""
        return min(self.purchases) if self.purchases else None

    @property
    def payer_id(self) -> str | None:
        """Who paid for the device (see :attr:`purchase`)."""
        chosen = self.purchase
        return None if chosen is None else chosen.payer_id

    @property
    def beneficiary_id(self) -> str | None:
        """Who the device was bought for, when the order named a beneficiary."""
        chosen = self.purchase
        return None if chosen is None else chosen.beneficiary_id

    @property
    def first_use_at(self) -> datetime | None:
        """First reported use."""
        return min((s.first_at for s in self.uses.values()), default=None)

    @property
    def last_use_at(self) -> datetime | None:
        """Last reported use."""
        return max((s.last_at for s in self.uses.values()), default=None)

    @property
    def version(self) -> DeviceVersion:
        """A rank that strictly increases whenever the state grows (see ``device_version``)."""
        return device_version(self)

    @property
    def person_ids(self) -> frozenset[str]:
        """Every (unredacted) person id the device facts mention."""
        ids: set[str | None] = {person for _, person in self.uses}
        if self.activations:
            ids.update(a.person_id for a in self.activations)
        for p in self.purchases:
            ids.add(p.payer_id)
            ids.add(p.beneficiary_id)
        ids.discard(None)
        ids.discard(ERASED)
        return frozenset(ids)  # type: ignore[arg-type]


def _redacted(state: DeviceState) -> DeviceState:
    marks = state.tombstones
    if not marks:
        return state
    activations = frozenset(
        Activation(a.at, a.event_id, redact(a.person_id, marks) or ERASED, a.product)
        for a in state.activations
    )
    purchases = frozenset(
        DevicePurchase(
            p.at,
            p.order_id,
            p.event_id,
            redact(p.payer_id, marks) or ERASED,
            redact(p.beneficiary_id, marks),
        )
        for p in state.purchases
    )
    uses = join_maps(
        ({(day, redact(person, marks)): span} for (day, person), span in state.uses.items()),
        join_spans,
    )
    return DeviceState(
        state.device_id, activations, state.deactivations, purchases, uses, state.tombstones
    )


def join_devices(device_id: str, states: Iterable[DeviceState]) -> DeviceState:
    """Join any number of states of one device (the n-ary form of :func:`merge_device`)."""
    parts = list(states)
    if any(s.device_id != device_id for s in parts):
        raise ValueError("cannot merge states of different devices")
    joined = DeviceState(
        device_id,
        frozenset().union(*(s.activations for s in parts)),
        frozenset().union(*(s.deactivations for s in parts)),
        frozenset().union(*(s.purchases for s in parts)),
        join_maps((s.uses for s in parts), join_spans),
        frozenset().union(*(s.tombstones for s in parts)),
    )
    return _redacted(joined)


def merge_device(left: DeviceState, right: DeviceState) -> DeviceState:
    """Join two states of the same device (idempotent, commutative, associative)."""
    return join_devices(left.device_id, (left, right))


def device_fact(device_id: str, event: DomainEvent) -> tuple[str, Any] | None:
    """The field and the fact a non-use event adds to device ``device_id`` (``None``: it
    adds nothing; uses are spans, see :func:`device_singleton`)."""
    match event:
        case DeviceActivated() if event.device_id == device_id:
            return "activations", Activation(
                event.at, event.event_id, event.person_id, event.product
            )
        case DeviceDeactivated() if event.device_id == device_id:
            return "deactivations", Deactivation(event.at, event.event_id, event.reason)
        case PaymentCompleted() if any(i.device_id == device_id for i in event.items):
            return "purchases", DevicePurchase(
                event.at, event.order_id, event.event_id, event.payer_id, event.beneficiary_id
            )
        case PersonErasureRequested():
            return "tombstones", tombstone_of(event.person_id)
        case _:
            return None


def device_singleton(device_id: str, event: DomainEvent) -> DeviceState:
    """The state holding only what ``event`` says about device ``device_id``."""
    if isinstance(event, DeviceUsed):
        if event.device_id != device_id:
            return DeviceState(device_id)
        key: UseKey = (event.at.date(), event.person_id)
        return DeviceState(device_id, uses=frozen_map({key: DaySpan.at(event.at)}))
    found = device_fact(device_id, event)
    if found is None:
        return DeviceState(device_id)
    name, fact = found
    changes: dict[str, Any] = {name: frozenset({fact})}
    return replace(DeviceState(device_id), **changes)


_EMPTY_FACTS: frozenset[Any] = frozenset()


def fold_device_events(
    device_id: str, base: DeviceState | None, events: Iterable[DomainEvent]
) -> DeviceState:
    """``join_devices(device_id, [base, *(device_singleton(device_id, e) for e in events)])``.

    The same join, computed with one mutable accumulator per field instead of a state per
    event (the projector's per-batch path). Returns ``base`` itself when the events add
    nothing to it.
    """
    if base is not None and base.device_id != device_id:
        raise ValueError("cannot merge states of different devices")
    facts: dict[str, set[Any]] = {}
    uses: dict[UseKey, DaySpan] | None = None
    for event in events:
        if type(event) is DeviceUsed:
            assert isinstance(event, DeviceUsed)
            if event.device_id != device_id:
                continue
            at = event.at
            key: UseKey = (at.date(), event.person_id)
            if uses is None:
                uses = {} if base is None else dict(base.uses)
            span = uses.get(key)
            if span is None:
                uses[key] = DaySpan(at, at)
            elif at < span.first_at:
                uses[key] = DaySpan(at, span.last_at)
            elif at > span.last_at:
                uses[key] = DaySpan(span.first_at, at)
            continue
        found = device_fact(device_id, event)
        if found is not None:
            name, fact = found
            known: frozenset[Any] = _EMPTY_FACTS if base is None else getattr(base, name)
            if fact not in known:
                facts.setdefault(name, set(known)).add(fact)
    if base is None:
        joined = DeviceState(
            device_id,
            frozenset(facts.get("activations", ())),
            frozenset(facts.get("deactivations", ())),
            frozenset(facts.get("purchases", ())),
            frozen_map() if uses is None else MappingProxyType(uses),
            frozenset(facts.get("tombstones", ())),
        )
        return _redacted(joined)
    if not facts and (uses is None or uses == base.uses):
        return base
    joined = DeviceState(
        device_id,
        frozenset(facts["activations"]) if "activations" in facts else base.activations,
        frozenset(facts["deactivations"]) if "deactivations" in facts else base.deactivations,
        frozenset(facts["purchases"]) if "purchases" in facts else base.purchases,
        base.uses if uses is None else MappingProxyType(uses),
        frozenset(facts["tombstones"]) if "tombstones" in facts else base.tombstones,
    )
    return _redacted(joined)


def apply_device(state: DeviceState, event: DomainEvent) -> DeviceState:
    """Apply one event: ``merge_device(state, device_singleton(state.device_id, event))``."""
    return merge_device(state, device_singleton(state.device_id, event))


def erase_from_device(state: DeviceState, person_ids: Iterable[str]) -> DeviceState:
    """Redact the given people from the device and keep their tombstones."""
    marks = frozenset(tombstone_of(p) for p in person_ids)
    if marks <= state.tombstones:
        return state
    return merge_device(state, DeviceState(state.device_id, tombstones=marks))


def device_ids_of(event: DomainEvent) -> frozenset[str]:
    """The device keys an event must be routed to (erasures are routed by the caller)."""
    match event:
        case DeviceActivated() | DeviceUsed() | DeviceDeactivated():
            return frozenset({event.device_id})
        case PaymentCompleted():
            return frozenset(i.device_id for i in event.items if i.device_id is not None)
        case _:
            return frozenset()
