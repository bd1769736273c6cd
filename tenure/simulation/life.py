"""One simulated person's life: what they did and when, plus the draws behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenure.simulation.catalogue import Product


@dataclass(frozen=True, slots=True)
class Happening:
    """One event a person caused, at its event time, before it becomes an envelope.

    ``label`` is unique within the life and, with the life's key, names the event id, so
    cutting a life short (at the simulation horizon) never renames the events kept.
    """

    label: str
    type: str
    time: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeviceSync:
    """How a device reaches the ingest service: always online, or in bursts when offline."""

    interval_days: float | None = None
    """Days between syncs of an offline device; ``None`` for a device that is always online."""
    phase_days: float = 0.0
    """Offset of the sync schedule, so offline devices do not all sync at once."""

    @property
    def offline(self) -> bool:
        """Whether events of this device wait for the next sync."""
        return self.interval_days is not None


@dataclass(slots=True)
class Life:
    """A person's events and the generating draws that the truth summary counts.

    Times a person did not reach (no purchase, no activation) are ``None``.
    """

    key: str
    person_id: str
    persona: str
    arrival: datetime
    happenings: list[Happening] = field(default_factory=list)
    device_id: str | None = None
    """The device this person uses or bought (the recipient's device for a gift payer)."""
    sync: DeviceSync = field(default_factory=DeviceSync)
    """How the device this person uses reaches the ingest service."""
    bought_device_at: datetime | None = None
    """When this person paid for a device (buyers and gift payers)."""
    activated_at: datetime | None = None
    """When the device this person uses (or, for a gift payer, gave) was activated."""
    stopped_at: datetime | None = None
    """When this person stopped using their device (end of the drawn tenure)."""
    tenure_days: float | None = None
    """The drawn active tenure of a user, in days."""
    first_payment_at: datetime | None = None
    """For a free user who converts: when they first paid."""
    uses_per_week: float = 0.0
    """How often this person uses their device while active, on average (0: never)."""
    rhythm: str | None = None
    """How this person spreads their use over time (a :class:`Rhythm` value), if they use."""

    def add(self, label: str, event_type: str, time: datetime, data: dict[str, Any]) -> None:
        """Record that this person caused an event of ``event_type`` at ``time``."""
        self.happenings.append(Happening(label, event_type, time, data))

    def pay(
        self,
        label: str,
        time: datetime,
        order_id: str,
        items: list[tuple[Product, str | None]],
        currency: str,
        beneficiary_id: str | None = None,
    ) -> None:
        """Record a ``payment.completed`` of ``items`` (product, device id or ``None``)."""
        lines: list[dict[str, Any]] = []
        for product, device_id in items:
            line: dict[str, Any] = {
                "sku": product.sku,
                "category": product.category,
                "amount_minor": product.amount_minor,
                "currency": currency,
            }
            if device_id is not None:
                line["device_id"] = device_id
            lines.append(line)
        data: dict[str, Any] = {"order_id": order_id, "payer_id": self.person_id, "items": lines}
        if beneficiary_id is not None:
            data["beneficiary_id"] = beneficiary_id
        self.add(label, "payment.completed", time, data)

    def refund(
        self, label: str, time: datetime, order_id: str, amount_minor: int, currency: str
    ) -> None:
        """Record a full ``payment.refunded`` of ``order_id``."""
        self.add(
            label,
            "payment.refunded",
            time,
            {
                "order_id": order_id,
                "payer_id": self.person_id,
                "amount_minor": amount_minor,
                "currency": currency,
            },
        )

    @property
    def last_time(self) -> datetime:
        """The latest event time of this life, or when its use stopped if that is later."""
        times = [h.time for h in self.happenings]
        if self.stopped_at is not None:
            times.append(self.stopped_at)
        return max(times, default=self.arrival)
