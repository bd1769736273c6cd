"""The parts every entry point shares, built from validated settings.

One place decides how a Tenure process reaches its outside world: the database pool (short
timeouts, so an outage is a wait and not a hang), the faust worker (Tenure's logging, no
spinner), the ``/metrics`` server (on ``TENURE_INGEST_HOST``), the faust data directory and
the stop signals. Each entry point (``tenure.entrypoints.*``) takes a
:class:`tenure.config.Settings`, builds what it needs here and wires it to its service or
worker; logging is configured once, before, by :func:`tenure.entrypoints.logs.configure_logging`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import faust
from psycopg_pool import ConnectionPool

from tenure.config import Settings
from tenure.runtime import liveness
from tenure.runtime.database import database_pool_options


def database_pool(
    settings: Settings,
    *,
    min_size: int,
    max_size: int,
    open: bool = True,
    check: bool = False,
    short_timeouts: bool = True,
) -> ConnectionPool:
    """A pool on the settings' database.

    ``short_timeouts``: a dead database is an error within seconds and a restarted one is used
    again within seconds (:func:`tenure.runtime.database.database_pool_options`; ``check``
    tests each connection before handing it out, for request-serving pools; each connection's
    server process gets ``TENURE_DATABASE_SESSION_NICE``). One-off commands pass ``False``
    and wait as psycopg does.
    """
    nice = settings.config.database_session_nice
    options = database_pool_options(check=check, session_nice=nice) if short_timeouts else {}
    return ConnectionPool(
        settings.database_url, min_size=min_size, max_size=max_size, open=open, **options
    )


def serve_metrics(settings: Settings, port: int, *, loop_liveness: bool = False) -> None:
    """Serve this process's ``/metrics`` on ``port`` of ``TENURE_INGEST_HOST`` (a thread);
    with ``loop_liveness``, also ``/healthz`` on its consume loop's heartbeat
    (``tenure/runtime/liveness.py``: every stream worker's batch loop)."""
    heartbeat = liveness.LOOP if loop_liveness else None
    liveness.serve(port, settings.config.ingest_host, heartbeat)


def faust_datadir(settings: Settings) -> Path:
    """Where the faust workers keep their data (under ``TENURE_STATE_DIR``)."""
    return Path(settings.config.state_dir) / "faust"


def run_faust_worker(app: faust.App, settings: Settings) -> None:
    """Run a faust app as this process's worker until it is stopped.

    Logging is Tenure's (``configure_logging``), not faust's: the same format as every Tenure
    process; no spinner, so a log file carries no terminal escapes.
    """
    worker = faust.Worker(
        app, loglevel=settings.config.log_level, quiet=True, override_logging=False
    )
    worker.spinner = None
    worker.execute_from_commandline()


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGINT or SIGTERM (the process then stops cleanly)."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
