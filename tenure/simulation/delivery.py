"""How events reach the ingest service: envelopes, late syncs of offline devices, retries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tenure.contract import format_time
from tenure.simulation.identifiers import Identifiers
from tenure.simulation.life import Happening, Life
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.schedule import next_sync

_UNIT = float(1 << 48)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One envelope sent to the ingest service at the simulated moment ``send_at``.

    ``send_at`` is never before the envelope's event time. ``resend`` marks the second copy
    of a duplicated delivery (the same envelope, the same ``id`` and ``source``).
    """

    send_at: datetime
    envelope: dict[str, Any]
    resend: bool = False

    def order_key(self) -> tuple[datetime, str, str, bool]:
        """Sort key: send time, then event time and id, a resend after its original."""
        return (self.send_at, self.envelope["time"], self.envelope["id"], self.resend)


def source_of(life: Life, params: SimulationParameters) -> str:
    """The CloudEvents ``source`` of the events of ``life``: prefix plus persona."""
    return f"{params.source_prefix}:{life.persona}"


def envelope(
    life: Life, happening: Happening, params: SimulationParameters, ids: Identifiers
) -> dict[str, Any]:
    """The CloudEvents structured-mode envelope of one happening."""
    return {
        "specversion": "1.0",
        "id": str(ids.event(life.key, happening.label)),
        "source": source_of(life, params),
        "type": happening.type,
        "time": format_time(happening.time),
        "datacontenttype": "application/json",
        "data": happening.data,
    }


def deliveries_of(
    life: Life,
    happening: Happening,
    params: SimulationParameters,
    ids: Identifiers,
) -> list[Delivery]:
    """The delivery of one happening, and its resend when it is duplicated.

    Device events of an offline device wait for its next sync; everything else is sent when
    it happens. Whether a delivery is duplicated (and how long the retry waits: 1 s to
    10 min) follows from bits of its event id, so it is as deterministic as the id.
    """
    event_id = ids.event(life.key, happening.label)
    env = envelope(life, happening, params, ids)
    send_at = happening.time
    if happening.type.startswith("device.") and life.sync.interval_days is not None:
        send_at = next_sync(happening.time, life.sync.interval_days, life.sync.phase_days)
    out = [Delivery(send_at, env)]
    raw = event_id.bytes
    if int.from_bytes(raw[:6]) / _UNIT < params.duplicate_rate:
        wait = 1 + int.from_bytes(raw[10:16]) / _UNIT * 599
        out.append(Delivery(send_at + timedelta(seconds=round(wait)), env, resend=True))
    return out
