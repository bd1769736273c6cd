"""The status file ``tenure up`` writes, so scripts and other commands find the endpoints.

The file holds the database URL with its password (other commands such as ``tenure token
create`` connect with it) and the dashboard's read token, so it is readable by its owner
only (mode 0600, in a 0700 folder). What ``tenure up`` prints carries no password
(:func:`redact_url`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


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
    postgres_restarts: int = 0
    """How often the supervisor started the embedded Postgres again after it died."""
    pending_recovery: list[str] = field(default_factory=list)
    """Recovery steps that failed and will be tried again (empty when all is well)."""

    def to_json(self, *, redact: bool = False) -> str:
        """The status as pretty JSON (``redact``: without the database password)."""
        data = asdict(self)
        if redact:
            data["database_url"] = redact_url(self.database_url)
        return json.dumps(data, indent=2, sort_keys=True)


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def status_path(state_dir: Path) -> Path:
    """Where the status file lives."""
    return state_dir / "run" / "status.json"


def write_status(state_dir: Path, status: PlatformStatus) -> None:
    """Write the status file atomically."""
    path = status_path(state_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)  # the database URL carries a password, the dashboard URL a token
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
