"""Log lines an operator can use: JSON that parses, and no third-party chatter at INFO."""

from __future__ import annotations

import io
import json
import logging
import warnings

import pytest

from tenure.entrypoints.logs import QUIET_AT_INFO, configure_logging


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_json_lines_parse_with_time_level_logger_message() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    logging.getLogger("tenure.platform.supervisor").info("migrations applied: %s", [1, 2])
    logging.getLogger("uvicorn.error").warning('a "quoted"\nmulti-line message')
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("streams.archiver.worker").exception("batch failed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library warning", UserWarning, stacklevel=1)
    records = [json.loads(line) for line in _lines(out)]
    assert [(r["level"], r["logger"]) for r in records] == [
        ("INFO", "tenure.platform.supervisor"),
        ("WARNING", "uvicorn.error"),
        ("ERROR", "streams.archiver.worker"),
        ("WARNING", "py.warnings"),
    ]
    assert records[0]["message"] == "migrations applied: [1, 2]"
    assert records[1]["message"] == 'a "quoted"\nmulti-line message'
    assert "RuntimeError: boom" in records[2]["exc_info"]
    assert "a library warning" in records[3]["message"]
    assert all(r["time"].startswith("20") and "T" in r["time"] for r in records)


def test_text_lines_name_level_and_logger() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", stream=out)
    logging.getLogger("tenure.eventlog.admin").info("topics ready")
    (line,) = _lines(out)
    assert line.endswith(" INFO tenure.eventlog.admin: topics ready")


@pytest.mark.parametrize("library", QUIET_AT_INFO)
def test_third_party_info_is_quiet_unless_debug(library: str) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", stream=out)
    logging.getLogger(f"{library}.conn").info("Attempting bootstrap")
    logging.getLogger(f"{library}.conn").warning("Bootstrap failed")
    logging.getLogger("tenure.x").info("ours")
    assert [line.split(" ", 2)[2] for line in _lines(out)] == [
        f"WARNING {library}.conn: Bootstrap failed",
        "INFO tenure.x: ours",
    ]
    out = io.StringIO()
    configure_logging("DEBUG", "text", stream=out)
    logging.getLogger(f"{library}.conn").info("Attempting bootstrap")
    assert [line.split(" ", 2)[2] for line in _lines(out)] == [
        f"INFO {library}.conn: Attempting bootstrap"
    ]


def test_configuring_twice_keeps_one_handler() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", stream=io.StringIO())
    configure_logging("INFO", "json", stream=out)
    logging.getLogger("tenure.x").info("once")
    assert len(_lines(out)) == 1 and len(logging.getLogger().handlers) == 1


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", "xml", stream=io.StringIO())
