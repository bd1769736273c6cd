"""The faust application settings every Tenure stream worker shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust


def faust_broker_settings() -> dict[str, Any]:
    """Faust settings every Tenure stream worker shares (see docs/brokers.md for why)."""
    return {
        "broker_session_timeout": 6.0,  # group joins take ~session_timeout/2 on Tansu
        "broker_heartbeat_interval": 1.0,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": False,
        "topic_allow_declare": True,
    }


def tenure_faust_app(app_id: str, bootstrap: str, datadir: Path, **settings: Any) -> faust.App:
    """A faust app for one Tenure worker (its data dir created, memory store)."""
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        datadir=str(datadir),
        store="memory://",
        **(faust_broker_settings() | settings),
    )
