"""The status file ``tenure up`` writes, so scripts and other commands find the endpoints."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class PlatformStatus:
    """Where the running platform's parts are."""

    pid: int
    started_at: str
    ingest_url: str
    query_url: str
    metrics_urls: dict[str, str]
    kafka_bootstrap: str
    database_url: str
    broker: str
    postgres: str
    processes: dict[str, int]
    broker_recoveries: int = 0
    dashboard_url: str = ""
    """The built-in dashboard with a read token in its fragment (``/dashboard#token=...``)."""

    def to_json(self) -> str:
        """The status as pretty JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def status_path(state_dir: Path) -> Path:
    """Where the status file lives."""
    return state_dir / "run" / "status.json"


def write_status(state_dir: Path, status: PlatformStatus) -> None:
    """Write the status file atomically."""
    path = status_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)  # the dashboard URL carries a read token
    tmp.chmod(0o600)
    tmp.write_text(status.to_json())
    tmp.replace(path)


def clear_status(state_dir: Path) -> None:
    """Remove the status file (on shutdown)."""
    status_path(state_dir).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status(state_dir: Path) -> PlatformStatus | None:
    """The running platform's status, or ``None`` when none runs (stale files are ignored)."""
    path = status_path(state_dir)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    status = PlatformStatus(**data)
    return status if _alive(status.pid) else None
