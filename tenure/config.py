"""Tenure's configuration: every setting comes from one environment variable.

The table in ``docs/configuration.md`` (and the README) lists the same variables; a unit test
keeps the two in step with :data:`SETTINGS`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, default (``None``: unset) and meaning."""

    env: str
    default: str | None
    meaning: str


MIN_PROJECTOR_CACHE_MB = 8
"""The smallest TENURE_PROJECTOR_CACHE_MB accepted (a smaller cache would hold too few states
of one derive pass to save anything)."""
DEFAULT_PROJECTOR_CACHE_MB = 128
OS_CHOSEN_PORTS: dict[str, str] = {
    "TENURE_INGEST_PORT": "0",
    "TENURE_QUERY_PORT": "0",
    "TENURE_ARCHIVER_METRICS_PORT": "0",
    "TENURE_SDK_VALIDATOR_METRICS_PORT": "0",
    "TENURE_PROJECTOR_METRICS_PORT": "0",
    "TENURE_DERIVER_METRICS_PORT": "0",
    "TENURE_FOLLOWER_METRICS_PORT": "0",
}
"""Every port setting of ``tenure up`` at 0: the OS picks free ports and the status file
(``tenure status --json``) says which (tests and benchmarks running beside each other)."""
"""TENURE_PROJECTOR_CACHE_MB's default (the settings table says the same)."""

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TENURE_KAFKA_BOOTSTRAP",
        None,
        "Kafka bootstrap servers (host:port,...). Unset: `tenure up` starts the embedded broker.",
    ),
    Setting(
        "TENURE_DATABASE_URL",
        None,
        "PostgreSQL URL. Unset: `tenure up` starts the embedded Postgres server.",
    ),
    Setting(
        "TENURE_STATE_DIR", ".tenure", "Where embedded Postgres data, logs and run files live."
    ),
    Setting(
        "TENURE_INGEST_HOST",
        "127.0.0.1",
        "Interface the HTTP services and the workers' /metrics listen on.",
    ),
    Setting("TENURE_INGEST_PORT", "8080", "Port of the ingest service (its /metrics too)."),
    Setting("TENURE_QUERY_PORT", "8081", "Port of the query service (its /metrics too)."),
    Setting("TENURE_ARCHIVER_METRICS_PORT", "9101", "Port of the archiver's /metrics."),
    Setting("TENURE_SDK_VALIDATOR_METRICS_PORT", "9102", "Port of the SDK validator's /metrics."),
    Setting("TENURE_PROJECTOR_METRICS_PORT", "9103", "Port of the projector's /metrics."),
    Setting(
        "TENURE_DERIVER_METRICS_PORT",
        "9104",
        "Port of the derive stage's /metrics when `tenure up` runs it as a process of its own "
        "(`tenure worker projector --stages derive`).",
    ),
    Setting(
        "TENURE_FOLLOWER_METRICS_PORT",
        "9105",
        "Port of the projector's followers' /metrics (publishing transitions, persons and "
        "audience changes; the audience and aggregates stages) when `tenure up` runs them as "
        "a process of their own (`tenure worker projector --stages follow`).",
    ),
    Setting("TENURE_TOPIC_PARTITIONS", "4", "Partitions of each Tenure topic when created."),
    Setting("TENURE_TOPIC_REPLICATION", "1", "Replication factor of each topic when created."),
    Setting(
        "TENURE_FUTURE_TOLERANCE_S",
        "300",
        "Events whose time is more than this many seconds in the future are rejected.",
    ),
    Setting(
        "TENURE_ALLOWED_LATENESS_S",
        "3600",
        "Projections are derived as of the latest event time less this many seconds.",
    ),
    Setting("TENURE_MAX_BATCH_EVENTS", "1000", "Most events one POST /v1/events may carry."),
    Setting("TENURE_MAX_BODY_BYTES", "1048576", "Largest request body the ingest service reads."),
    Setting(
        "TENURE_EMBEDDED_BROKER_PORT", "0", "Port of the embedded broker (0: pick a free one)."
    ),
    Setting(
        "TENURE_EMBEDDED_POSTGRES_PORT", "0", "Port of the embedded Postgres (0: pick a free one)."
    ),
    Setting(
        "TENURE_PROJECTOR_CACHE_MB",
        str(DEFAULT_PROJECTOR_CACHE_MB),
        "MiB of decoded raw states and resolved person ids a projector worker keeps in memory "
        "(least recently used evicted first; a miss only costs a database read). `tenure "
        "replay` folds the archive in parts of independent persons whose states fit it "
        "(docs/design/replay-cost.md). At least 8.",
    ),
    Setting(
        "TENURE_REPLAY_WORKERS",
        "0",
        "Worker processes `tenure replay` folds, assembles and derives its parts of independent "
        "persons in, side by side. 0: one per core the process may use (at most one per 20,000 "
        "archived events); 1: the replaying process alone.",
    ),
    Setting(
        "TENURE_MALLOC_ARENAS",
        "2",
        "malloc arenas a worker process (archiver, SDK validator, projector, `tenure replay`) "
        "may use; glibc's default is eight per core, and memory freed in one arena is not "
        "reused by another. 0: glibc's default. `MALLOC_ARENA_MAX`, when set, wins.",
    ),
    Setting(
        "TENURE_INTAKE_NICE",
        "10",
        "CPU priority, as a nice value 0-19, of the processes `tenure up` runs that take events "
        "in (the ingest API, the archiver, the demo feeder), and of their sessions in the "
        "embedded Postgres. While the CPU is contended they yield to the projection, "
        "Postgres, the broker, the SDK validator and the query API, so views stay fresh and "
        "the ingest API answers slower instead; an idle machine runs them at full speed. 0: "
        "every process an equal share (docs/deploy.md, 'CPU shares').",
    ),
    Setting(
        "TENURE_DATABASE_SESSION_NICE",
        "0",
        "CPU priority, as a nice value 0-19, of the Postgres server processes of this "
        "process's database sessions, set when it connects, where that server runs on this "
        "machine (checked: a `postgres` process here that started with the session; a remote "
        "server is left alone). Their "
        "statements then yield inside Postgres to other sessions' while the CPU is "
        "contended. `tenure up` gives the intake's sessions `TENURE_INTAKE_NICE` on its "
        "embedded Postgres; 0: unchanged.",
    ),
    Setting(
        "TENURE_AUDIENCES",
        "on",
        "`on`, or `off`: the projector runs no audience stage (memberships, their changes and "
        "`tenure.audiences.v1` stand still; back `on`, the stage catches up from where it "
        "stopped). For measuring the stage's cost (`python -m bench --only audiences_load`).",
    ),
    Setting(
        "TENURE_LOG_LEVEL",
        "INFO",
        "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL. Person ids are logged only at "
        "DEBUG; so is the connection chatter of the Kafka clients and faust.",
    ),
    Setting(
        "TENURE_LOG_FORMAT",
        "text",
        "`text`, or `json`: one JSON object per line with `time`, `level`, `logger` and "
        "`message`, from every Tenure process.",
    ),
)
"""Every setting Tenure reads."""

_DEFAULTS = {s.env: s.default for s in SETTINGS}

MAX_NICE = 19
"""The lowest CPU priority a nice value names (``TENURE_INTAKE_NICE`` and
``TENURE_DATABASE_SESSION_NICE`` are 0 to it)."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The values TENURE_LOG_LEVEL accepts (any case)."""

LOG_FORMATS = ("text", "json")
"""The values TENURE_LOG_FORMAT accepts (any case)."""


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value == "":
        return _DEFAULTS[name]
    return value


def _int(env: Mapping[str, str], name: str) -> int:
    raw = _get(env, name)
    try:
        return int(raw or "")
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _switch(env: Mapping[str, str], name: str) -> bool:
    raw = (_get(env, name) or "").lower()
    if raw not in ("on", "off"):
        raise ValueError(f"{name} must be on or off, got {raw!r}")
    return raw == "on"


@dataclass(frozen=True, slots=True)
class TenureConfig:
    """The resolved configuration of one Tenure process."""

    kafka_bootstrap: str | None
    database_url: str | None
    state_dir: Path
    ingest_host: str
    ingest_port: int
    query_port: int
    archiver_metrics_port: int
    sdk_validator_metrics_port: int
    projector_metrics_port: int
    deriver_metrics_port: int
    follower_metrics_port: int
    topic_partitions: int
    topic_replication: int
    future_tolerance_s: int
    allowed_lateness_s: int
    max_batch_events: int
    max_body_bytes: int
    embedded_broker_port: int
    embedded_postgres_port: int
    projector_cache_mb: int
    replay_workers: int
    malloc_arenas: int
    intake_nice: int
    database_session_nice: int
    audience_stage: bool
    log_level: str
    log_format: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TenureConfig:
        """Read the configuration from ``env`` (default: the process environment)."""
        e: Mapping[str, str] = os.environ if env is None else env
        config = cls(
            kafka_bootstrap=_get(e, "TENURE_KAFKA_BOOTSTRAP"),
            database_url=_get(e, "TENURE_DATABASE_URL"),
            state_dir=Path(_get(e, "TENURE_STATE_DIR") or ".tenure").resolve(),
            ingest_host=_get(e, "TENURE_INGEST_HOST") or "127.0.0.1",
            ingest_port=_int(e, "TENURE_INGEST_PORT"),
            query_port=_int(e, "TENURE_QUERY_PORT"),
            archiver_metrics_port=_int(e, "TENURE_ARCHIVER_METRICS_PORT"),
            sdk_validator_metrics_port=_int(e, "TENURE_SDK_VALIDATOR_METRICS_PORT"),
            projector_metrics_port=_int(e, "TENURE_PROJECTOR_METRICS_PORT"),
            deriver_metrics_port=_int(e, "TENURE_DERIVER_METRICS_PORT"),
            follower_metrics_port=_int(e, "TENURE_FOLLOWER_METRICS_PORT"),
            topic_partitions=_int(e, "TENURE_TOPIC_PARTITIONS"),
            topic_replication=_int(e, "TENURE_TOPIC_REPLICATION"),
            future_tolerance_s=_int(e, "TENURE_FUTURE_TOLERANCE_S"),
            allowed_lateness_s=_int(e, "TENURE_ALLOWED_LATENESS_S"),
            max_batch_events=_int(e, "TENURE_MAX_BATCH_EVENTS"),
            max_body_bytes=_int(e, "TENURE_MAX_BODY_BYTES"),
            embedded_broker_port=_int(e, "TENURE_EMBEDDED_BROKER_PORT"),
            embedded_postgres_port=_int(e, "TENURE_EMBEDDED_POSTGRES_PORT"),
            projector_cache_mb=_int(e, "TENURE_PROJECTOR_CACHE_MB"),
            replay_workers=_int(e, "TENURE_REPLAY_WORKERS"),
            malloc_arenas=_int(e, "TENURE_MALLOC_ARENAS"),
            intake_nice=_int(e, "TENURE_INTAKE_NICE"),
            database_session_nice=_int(e, "TENURE_DATABASE_SESSION_NICE"),
            audience_stage=_switch(e, "TENURE_AUDIENCES"),
            log_level=(_get(e, "TENURE_LOG_LEVEL") or "INFO").upper(),
            log_format=(_get(e, "TENURE_LOG_FORMAT") or "text").lower(),
        )
        if config.log_level not in LOG_LEVELS:
            raise ValueError(
                f"TENURE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {config.log_level!r}"
            )
        if config.log_format not in LOG_FORMATS:
            raise ValueError(
                f"TENURE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                f"got {config.log_format!r}"
            )
        for name, value in (
            ("TENURE_TOPIC_PARTITIONS", config.topic_partitions),
            ("TENURE_TOPIC_REPLICATION", config.topic_replication),
            ("TENURE_MAX_BATCH_EVENTS", config.max_batch_events),
            ("TENURE_MAX_BODY_BYTES", config.max_body_bytes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        for name, value in (
            ("TENURE_FUTURE_TOLERANCE_S", config.future_tolerance_s),
            ("TENURE_ALLOWED_LATENESS_S", config.allowed_lateness_s),
            ("TENURE_MALLOC_ARENAS", config.malloc_arenas),
            ("TENURE_REPLAY_WORKERS", config.replay_workers),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if config.projector_cache_mb < MIN_PROJECTOR_CACHE_MB:
            raise ValueError(
                f"TENURE_PROJECTOR_CACHE_MB must be at least {MIN_PROJECTOR_CACHE_MB}, "
                f"got {config.projector_cache_mb}"
            )
        for name, value in (
            ("TENURE_INTAKE_NICE", config.intake_nice),
            ("TENURE_DATABASE_SESSION_NICE", config.database_session_nice),
        ):
            if not 0 <= value <= MAX_NICE:
                raise ValueError(f"{name} must be 0-{MAX_NICE}, got {value}")
        return config


@dataclass(frozen=True, slots=True)
class Settings:
    """What an entry point runs with: the configuration and the servers checked to answer.

    The command line builds it once per process (``tenure.cli.preflight``): the environment
    read and validated by :meth:`TenureConfig.from_env`, the database (every entry point has
    one) and, for those that use Kafka, the broker, each checked to answer. Entry points
    (``tenure.entrypoints``) take it and read nothing else from the environment.
    """

    config: TenureConfig
    database_url: str
    kafka_bootstrap: str | None = None

    def broker(self) -> str:
        """The Kafka bootstrap servers; only entry points given a broker call this."""
        if self.kafka_bootstrap is None:
            raise ValueError("this entry point needs Kafka, and no broker was checked")
        return self.kafka_bootstrap


def settings_table_markdown() -> str:
    """Render :data:`SETTINGS` as the Markdown table the docs carry."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = "(unset)" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{s.env}` | {default} | {s.meaning} |")
    return "\n".join(rows)
