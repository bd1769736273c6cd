"""What a device contributes to each person it mentions: a pure function of device state.

Attribution rule for a ``device.used`` without ``person_id``: the use belongs to the
device's user at that event time, i.e. the person of the latest binding change (an
activation binds, a deactivation unbinds) at or before the use; at the same instant a
deactivation sorts before an activation, then by event id. A use before any binding change
belongs to the person of the first activation (the device buffered use before its
activation reached us); with no activation at all the use stays unattributed. Uses are
kept per day as a (first, last) span, so the two ends of an anonymous span are attributed
separately; a person bound in between is active that day through the activation itself,
so the set of active days per person is exact.

Because a late activation can re-attribute earlier uses, contributions are always
re-derived from the whole device state, never accumulated.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from tenure.domain.device import DeviceState
from tenure.domain.erasure import ERASED
from tenure.domain.lattice import DaySpan, frozen_map


@dataclass(frozen=True, slots=True)
class DeviceContribution:
    """One device's share in one person's lifecycle."""

    device_id: str
    person_id: str
    days: Mapping[date, DaySpan] = field(default_factory=frozen_map)
    """Days this person used the device as its user (activation or use), with spans."""
    activations: frozenset[datetime] = frozenset()
    """When this person activated the device."""
    is_current_user: bool = False
    """Whether the device is bound to this person now (latest binding change)."""
    product: str | None = None
    payer_id: str | None = None
    """Who paid for the device (the earliest purchase naming it), if known."""
    paid_at: datetime | None = None
    beneficiary_id: str | None = None
    device_users: Mapping[str, datetime] = field(default_factory=frozen_map)
    """Only on the payer's contribution: each user of the device and their first use."""

    @property
    def is_payer(self) -> bool:
        """Whether this person paid for the device."""
        return self.payer_id == self.person_id

    @property
    def someone_else_paid(self) -> bool:
        """Whether a different person id paid for the device (aliases resolved later)."""
        return self.payer_id is not None and self.payer_id != self.person_id

    @property
    def first_use_at(self) -> datetime | None:
        """First engagement with the device as its user."""
        return min((s.first_at for s in self.days.values()), default=None)

    @property
    def last_use_at(self) -> datetime | None:
        """Last engagement with the device as its user."""
        return max((s.last_at for s in self.days.values()), default=None)

    @property
    def first_activation_at(self) -> datetime | None:
        """First activation of the device by this person."""
        return min(self.activations, default=None)

    @property
    def sort_key(self) -> tuple[str, ...]:
        """A canonical total order, used only to break ties between equal versions."""
        return (
            repr(sorted(self.days.items())),
            repr(sorted(self.activations)),
            repr((self.is_current_user, self.product, self.payer_id, self.paid_at)),
            repr((self.beneficiary_id, sorted(self.device_users.items()))),
        )


class _Binding:
    """The device's user over time, from activations (bind) and deactivations (unbind)."""

    def __init__(self, state: DeviceState) -> None:
        changes: list[tuple[datetime, int, tuple[str, str], str | None]] = [
            (d.at, 0, d.event_id, None) for d in state.deactivations
        ]
        changes += [(a.at, 1, a.event_id, a.person_id) for a in state.activations]
        changes.sort()
        self._times = [c[0] for c in changes]
        self._users = [c[3] for c in changes]
        first = min(state.activations, default=None)
        self._before_any = None if first is None else first.person_id

    def user_at(self, moment: datetime) -> str | None:
        """The person the device was bound to at ``moment``."""
        index = bisect_right(self._times, moment) - 1
        return self._before_any if index < 0 else self._users[index]

    @property
    def current(self) -> str | None:
        """The person the device is bound to after every known change."""
        return self._users[-1] if self._users else None


def _add_span(days: dict[str, dict[date, DaySpan]], person: str | None, span: DaySpan) -> None:
    if person is None:
        return
    per_day = days.setdefault(person, {})
    current = per_day.get(span.day)
    per_day[span.day] = span if current is None else current.join(span)


def _usage_days(state: DeviceState, binding: _Binding) -> dict[str, dict[date, DaySpan]]:
    days: dict[str, dict[date, DaySpan]] = {}
    for activation in state.activations:
        _add_span(days, activation.person_id, DaySpan.at(activation.at))
    for (_, named), span in state.uses.items():
        if named is not None:
            _add_span(days, named, span)
            continue
        first_user, last_user = binding.user_at(span.first_at), binding.user_at(span.last_at)
        if first_user == last_user:
            _add_span(days, first_user, span)
        else:
            _add_span(days, first_user, DaySpan.at(span.first_at))
            _add_span(days, last_user, DaySpan.at(span.last_at))
    return days


def current_user(state: DeviceState) -> str | None:
    """The person the device is bound to after every known change (None when unbound or
    erased): the person whose contribution has ``is_current_user``, without computing the
    contributions."""
    user = _Binding(state).current
    return None if user == ERASED else user


def device_contributions(state: DeviceState) -> dict[str, DeviceContribution]:
    """Each person's contribution from one device, keyed by the (raw) person id.

    Every person the device facts mention gets an entry, even one that no longer
    contributes anything (e.g. a payer superseded by an earlier order), so that a pushed
    contribution always supersedes a stale one. Erased people are left out.
    """
    binding = _Binding(state)
    days = _usage_days(state, binding)
    purchase = state.purchase
    payer = None if purchase is None else purchase.payer_id
    users = {
        person: min(span.first_at for span in per_day.values())
        for person, per_day in days.items()
        if per_day
    }
    activations: dict[str, set[datetime]] = {}
    for activation in state.activations:
        activations.setdefault(activation.person_id, set()).add(activation.at)
    people = (state.person_ids | frozenset(days)) - {ERASED}
    product = state.product
    paid_at = None if purchase is None else purchase.at
    beneficiary = None if purchase is None else purchase.beneficiary_id
    return {
        person: DeviceContribution(
            device_id=state.device_id,
            person_id=person,
            days=frozen_map(days.get(person, {})),
            activations=frozenset(activations.get(person, set())),
            is_current_user=binding.current == person,
            product=product,
            payer_id=payer,
            paid_at=paid_at,
            beneficiary_id=beneficiary,
            device_users=frozen_map(users if person == payer else {}),
        )
        for person in sorted(people)
    }
