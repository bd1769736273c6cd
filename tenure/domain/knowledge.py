"""How much a state knows: one measure for devices, persons and raw neighbourhoods.

The projection needs to know whether a state has grown: a person's device contribution is
replaced only by one from a device that knows more (:func:`device_version`), and a read
model row moves only forward (its ``basis``: :func:`neighbourhood_knowledge`). Every
measure here is built from the same rule:

- **a fact counts one**: a device's activations, deactivations, purchases and days of use
  (per day and named person); a person's aliases (other than itself), orders, refunds, gifts
  received, referrals made and received, feedback, cancellations, device contributions (one
  per device and person id) and consent changes; an identity link;
- **a tombstone outranks any number of facts**: adding a tombstone to a device can
  collapse facts that then name the same erased marker, so the tombstone count comes first
  (:data:`TOMBSTONE_WEIGHT`); an erased person drops its facts and absorbs every merge, so
  it ranks above every live state (:data:`ERASED_PERSON_KNOWLEDGE`).

Every merge is a key-wise union, so no measure decreases under merge, and equal states have
equal measures (property-tested in ``tests/unit/domain/test_knowledge.py``). The measures
are not strictly monotone: a merge that only replaces a value under an existing key (an
earlier order time, a wider span of use) keeps the count. :func:`device_version` adds the
total span length as a last component, which makes it strictly increase whenever a device
state grows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tenure.domain.device import DeviceState, DeviceVersion
    from tenure.domain.neighbourhood import RawWorld
    from tenure.domain.person import PersonState

TOMBSTONE_WEIGHT: Final = 1 << 32
"""What one device tombstone weighs in :func:`device_knowledge`: more than any fact count."""

ERASED_PERSON_KNOWLEDGE: Final = 1 << 40
""":func:`person_knowledge` of an erasure tombstone (the top of the person lattice).

Larger than the fact count of any real state, and small enough that sums over millions of
states still fit a Postgres ``bigint``.
"""


def device_facts(state: DeviceState) -> int:
    """The facts a device state holds (not monotone alone: a tombstone can collapse them)."""
    return (
        len(state.activations) + len(state.deactivations) + len(state.purchases) + len(state.uses)
    )


def device_knowledge(state: DeviceState) -> int:
    """How much a device state knows: tombstones first, then facts (never decreases)."""
    return len(state.tombstones) * TOMBSTONE_WEIGHT + device_facts(state)


_NO_TIME: Final = timedelta()
_MICROSECOND: Final = timedelta(microseconds=1)


def device_version(state: DeviceState) -> DeviceVersion:
    """A rank that strictly increases whenever a device state grows.

    ``(tombstones, facts, total span length)``, compared lexicographically: the first two
    are :func:`device_knowledge` (a span can only widen, so the third breaks its ties).
    """
    # the spans' lengths summed as timedeltas (exact), then in microseconds: half the time
    # of summing each span's ``length_us``
    total = sum([span.last_at - span.first_at for span in state.uses.values()], _NO_TIME)
    return (len(state.tombstones), device_facts(state), total // _MICROSECOND)


def person_knowledge(state: PersonState) -> int:
    """How much a person state knows: its facts, or :data:`ERASED_PERSON_KNOWLEDGE`."""
    if state.erased_at is not None:
        return ERASED_PERSON_KNOWLEDGE
    return (
        len(state.aliases - {state.person_id})
        + len(state.orders)
        + len(state.refunds)
        + len(state.gifts_received)
        + len(state.referrals_made)
        + len(state.referred_by)
        + len(state.feedback)
        + len(state.cancellations)
        + len(state.device_contrib)
        + len(state.consent)
    )


def neighbourhood_knowledge(part: RawWorld) -> int:
    """How much a raw neighbourhood knows: its devices', persons' and links' measures.

    The ``basis`` of a read-model row: a row is replaced only by one derived from a
    neighbourhood that knows at least as much.
    """
    return (
        sum(device_knowledge(d) for d in part.devices.values())
        + sum(person_knowledge(p) for p in part.person_states.values())
        + len(part.identity.links)
    )
