"""How every process Tenure starts writes its log: one handler on stderr, text or JSON.

The ``tenure`` command configures logging once (:func:`configure_logging`); the HTTP services
run uvicorn with ``log_config=None`` and the faust workers with ``override_logging=False``, so
their records reach the same handler and the same format.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from tenure.config import LOG_FORMATS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The line of ``TENURE_LOG_FORMAT=text``."""

QUIET_AT_INFO = ("kafka", "aiokafka", "faust", "mode", "httpx", "httpcore", "uvicorn.access")
"""Third-party loggers that narrate every connection and rebalance at INFO.

Below DEBUG they log only warnings and errors; at ``TENURE_LOG_LEVEL=DEBUG`` they log all.
"""


OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "py.warnings")
"""Loggers a library (or an earlier configuration) may have given handlers of their own
(uvicorn's default log config does, and stops them propagating): they are made to reach the
one root handler instead."""


def json_formatter() -> logging.Formatter:
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``.

    Extra fields passed with ``extra=`` and a formatted ``exc_info`` are kept as keys.
    """
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Send every record at ``level`` or above to ``stream`` (stderr) in ``log_format``.

    Replaces handlers already on the root logger, so calling it twice changes nothing more.
    Python warnings are logged too (logger ``py.warnings``), so a JSON log stays JSON.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(
        json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.WARNING if root.getEffectiveLevel() > logging.DEBUG else logging.NOTSET
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(quiet)
    for name in OWN_HANDLERS:
        own = logging.getLogger(name)
        for old in list(own.handlers):
            own.removeHandler(old)
        own.propagate = True
        own.disabled = False
    logging.captureWarnings(False)  # re-capture: whoever replaced showwarning since
    logging.captureWarnings(True)
