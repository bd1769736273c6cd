"""What a simulated population really is, computed from the draws that generated it.

Dashboards measure the population from its events; the truth says what they should find.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tenure.simulation.delivery import Delivery
from tenure.simulation.life import Life
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.persona import (
    ACTIVATION_WINDOW_DAYS,
    CONNECTED_USERS,
    DEVICE_BUYERS,
    Persona,
)


@dataclass(frozen=True, slots=True)
class Truth:
    """Known facts of a simulated span (everything counted up to the span's end).

    ``activation_share`` counts only buyers who paid at least 14 days before the end (their
    window is complete); ``conversion_share`` counts free users who paid by the end.
    """

    start: datetime
    end: datetime
    people: dict[str, int]
    """People per persona who arrived by the end."""
    events_by_type: dict[str, int]
    """Distinct events delivered by the end, per type."""
    deliveries: int
    """Deliveries sent by the end, resends included."""
    duplicates: int
    """Resent deliveries (the same envelope a second time)."""
    late: int
    """Deliveries of offline devices sent after their event time (out of event-time order)."""
    intended_median_tenure_days: float
    """The median of the tenure distribution of connected users (a parameter)."""
    drawn_median_tenure_days: float | None
    """The median of the tenures drawn for connected users who activated by the end."""
    still_active: int
    """Connected users whose drawn tenure goes on past the end (right-censored)."""
    buyers_with_full_window: int
    """Device buyers who paid at least 14 days before the end."""
    activated_within_window: int
    """Of those, how many had the device activated within 14 days of paying."""
    free_users: int
    """Free users who arrived by the end."""
    converted_free_users: int
    """Free users who made their first payment by the end."""
    intended_conversion_rate: float
    """The parameter: share of free users who eventually pay."""

    @property
    def events(self) -> int:
        """Distinct events delivered by the end."""
        return sum(self.events_by_type.values())

    @property
    def activation_share(self) -> float | None:
        """Share of buyers (with a complete window) whose device was activated in 14 days."""
        if not self.buyers_with_full_window:
            return None
        return self.activated_within_window / self.buyers_with_full_window

    @property
    def conversion_share(self) -> float | None:
        """Share of free users who paid by the end."""
        return self.converted_free_users / self.free_users if self.free_users else None

    def rows(self) -> list[tuple[str, str]]:
        """The truth as ``(what, value)`` rows for printing next to a dashboard."""

        def share(value: float | None) -> str:
            return "-" if value is None else f"{value:.1%}"

        rows = [("span", f"{self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} UTC")]
        rows += [(f"people: {p}", str(n)) for p, n in self.people.items()]
        rows += [
            ("events (distinct)", str(self.events)),
            *((f"events: {t}", str(n)) for t, n in sorted(self.events_by_type.items())),
            ("deliveries (with resends)", str(self.deliveries)),
            ("duplicate deliveries", str(self.duplicates)),
            ("late deliveries (offline devices)", str(self.late)),
            ("median tenure, intended (days)", f"{self.intended_median_tenure_days:g}"),
            (
                "median tenure, drawn (days)",
                "-"
                if self.drawn_median_tenure_days is None
                else f"{self.drawn_median_tenure_days:.1f}",
            ),
            ("connected users still active at end", str(self.still_active)),
            (
                f"activation within {ACTIVATION_WINDOW_DAYS} d",
                f"{share(self.activation_share)} "
                f"({self.activated_within_window}/{self.buyers_with_full_window} buyers)",
            ),
            (
                "free users who paid",
                f"{share(self.conversion_share)} ({self.converted_free_users}/{self.free_users};"
                f" intended eventually {self.intended_conversion_rate:.0%})",
            ),
        ]
        return rows


def measure(
    params: SimulationParameters, lives: Iterable[Life], deliveries: Sequence[Delivery]
) -> Truth:
    """The truth of a span from its lives and the deliveries sent by its end."""
    end = params.end
    window = timedelta(days=ACTIVATION_WINDOW_DAYS)
    people: Counter[str] = Counter({p.value: 0 for p in Persona})
    tenures: list[float] = []
    still_active = buyers = activated = free = converted = 0
    for life in lives:
        if life.arrival > end:
            continue
        people[life.persona] += 1
        persona = Persona(life.persona)
        if persona in CONNECTED_USERS and life.activated_at and life.activated_at <= end:
            assert life.tenure_days is not None and life.stopped_at is not None
            tenures.append(life.tenure_days)
            still_active += life.stopped_at > end
        if (
            persona in DEVICE_BUYERS
            and life.bought_device_at
            and life.bought_device_at <= end - window
        ):
            buyers += 1
            activated += bool(
                life.activated_at and life.activated_at - life.bought_device_at <= window
            )
        if persona is Persona.FREE_USER:
            free += 1
            converted += bool(life.first_payment_at and life.first_payment_at <= end)
    by_type: Counter[str] = Counter()
    late = duplicates = 0
    for d in deliveries:
        if d.resend:
            duplicates += 1
            continue
        by_type[d.envelope["type"]] += 1
        late += d.send_at > datetime.fromisoformat(d.envelope["time"])
    return Truth(
        start=params.start,
        end=end,
        people=dict(people),
        events_by_type=dict(by_type),
        deliveries=len(deliveries),
        duplicates=duplicates,
        late=late,
        intended_median_tenure_days=params.tenure_median_days,
        drawn_median_tenure_days=statistics.median(tenures) if tenures else None,
        still_active=still_active,
        buyers_with_full_window=buyers,
        activated_within_window=activated,
        free_users=free,
        converted_free_users=converted,
        intended_conversion_rate=params.free_conversion_rate,
    )
