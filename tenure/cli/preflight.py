"""The settings of one ``tenure`` command, validated once before it starts.

:func:`configuration` reads and validates the environment (and sets up logging);
:func:`entry_settings` and :func:`command_settings` check that each server the settings name
answers and return the :class:`tenure.config.Settings` an entry point runs with. A wrong
``TENURE_DATABASE_URL`` or ``TENURE_KAFKA_BOOTSTRAP`` becomes one line that names the
variable, its value (password hidden) and the reason, instead of a traceback from deep inside a
driver, or a service that starts and then retries forever.
"""

from __future__ import annotations

import logging
import re
import socket
from urllib.parse import urlsplit, urlunsplit

from tenure.config import Settings, TenureConfig
from tenure.errors import TenureError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
"""How long each check waits for a server to answer."""


class SettingError(TenureError):
    """A setting that makes the command unable to run; the message is one line for the user."""


def configuration() -> TenureConfig:
    """The configuration from the environment, with logging set up as it says.

    A value :meth:`TenureConfig.from_env` refuses becomes a :class:`SettingError`.
    """
    from tenure.entrypoints.logs import configure_logging

    try:
        config = TenureConfig.from_env()
    except ValueError as exc:
        raise SettingError(str(exc)) from None
    configure_logging(config.log_level, config.log_format)
    return config


def one_line(text: str) -> str:
    """Collapse a driver's multi-line message into one line."""
    return " ".join(str(text).split())


def hide_password(database_url: str) -> str:
    """``database_url`` with its password, if any, replaced by ``***``.

    Handles both URLs (``postgresql://user:secret@host/db``) and key/value connection strings
    (``host=h password=secret``).
    """
    if "://" in database_url:
        try:
            parts = urlsplit(database_url)
            password = parts.password
        except ValueError:  # e.g. a port that is not a number
            password = None
            parts = None
        if parts is not None and password is not None:
            user, _, host = parts.netloc.rpartition("@")
            name = user.split(":", 1)[0]
            return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))
        # not parsable as a URL: hide whatever sits between the first ':' of the user part and '@'
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", database_url)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", database_url)


def _shown(database_url: str) -> str:
    hidden = hide_password(database_url)
    return hidden + (" (password hidden)" if hidden != database_url else "")


def check_database(database_url: str | None) -> str:
    """Return ``database_url`` once Postgres accepts a connection there; else SettingError."""
    import psycopg

    if not database_url:
        raise SettingError("TENURE_DATABASE_URL is not set")
    try:
        with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True):
            pass
    except psycopg.Error as exc:
        raise SettingError(
            f"cannot connect to Postgres at TENURE_DATABASE_URL={_shown(database_url)}: "
            f"{one_line(str(exc))}"
        ) from None
    return database_url


def check_kafka(bootstrap: str | None) -> str:
    """Return ``bootstrap`` once a Kafka broker there answers; else SettingError."""
    from tenure.runtime.broker import bootstrap_addresses, broker_answers

    if not bootstrap:
        raise SettingError("TENURE_KAFKA_BOOTSTRAP is not set")
    where = f"Kafka at TENURE_KAFKA_BOOTSTRAP={bootstrap}"
    try:
        addresses = bootstrap_addresses(bootstrap)
    except ValueError as exc:
        raise SettingError(f"cannot use {where}: {exc} (want host:port[,host:port...])") from None
    refusals = []
    for host, port in addresses:
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
            break
        except OSError as exc:
            refusals.append(f"{one_line(exc.strerror or str(exc))} ({host}:{port})")
    else:
        raise SettingError(f"cannot reach {where}: {'; '.join(refusals)}")
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # the one line below says what went wrong
    try:
        if broker_answers(bootstrap):
            return bootstrap
        reason = "no broker answered a metadata request"
    except Exception as exc:  # any client failure means "not a usable broker"
        text = str(exc)
        name = type(exc).__name__
        reason = one_line(text if text.startswith(name) else f"{name}: {text}")
    finally:
        kafka_log.setLevel(level)
    raise SettingError(f"cannot use {where}: {reason}")


def entry_settings(config: TenureConfig, *, kafka: bool) -> Settings:
    """The settings of a service or worker: the servers its own variables name, checked.

    ``kafka``: it uses the broker too (checked first). A child of ``tenure up`` is given both
    variables by the supervisor.
    """
    bootstrap = check_kafka(config.kafka_bootstrap) if kafka else None
    return Settings(config, check_database(config.database_url), bootstrap)


def platform_config(config: TenureConfig) -> TenureConfig:
    """The settings of ``tenure up``: an external server its variable names is checked (say
    clearly when it is unusable); an unset one is started embedded."""
    if config.database_url:
        check_database(config.database_url)
    if config.kafka_bootstrap:
        check_kafka(config.kafka_bootstrap)
    return config


def command_settings(config: TenureConfig, *, kafka: bool = False) -> Settings:
    """The settings of a one-off command: each server its variable names, else that of the
    running ``tenure up``; the database checked.

    ``kafka``: use the broker when one answers; without it the command goes on (the warning
    says what stays undone), so ``kafka_bootstrap`` may be ``None``.
    """
    bootstrap = None
    if kafka:
        try:
            bootstrap = kafka_bootstrap(config)
        except SettingError as exc:
            log.warning("no broker for re-publishing (%s); those letters stay pending", exc)
    return Settings(config, database_url(config), bootstrap)


def running(config: TenureConfig, configured: str | None, env: str, field: str) -> str:
    """A server's address: its environment variable, else that of a running ``tenure up``."""
    if configured:
        return configured
    from tenure.platform.status import read_status

    status = read_status(config.state_dir)
    if status is None:
        raise SettingError(f"{env} is unset and no `tenure up` is running in {config.state_dir}")
    return str(getattr(status, field))


def database_url(config: TenureConfig) -> str:
    """The database: TENURE_DATABASE_URL, else the one of a running ``tenure up``; reachable."""
    return check_database(
        running(config, config.database_url, "TENURE_DATABASE_URL", "database_url")
    )


def kafka_bootstrap(config: TenureConfig) -> str:
    """The broker: TENURE_KAFKA_BOOTSTRAP, else the one of a running ``tenure up``; reachable."""
    return check_kafka(
        running(config, config.kafka_bootstrap, "TENURE_KAFKA_BOOTSTRAP", "kafka_bootstrap")
    )
