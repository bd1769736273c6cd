"""``tenure audiences list|show|export``: the audiences and their members, for people and for
tools that import files (CSV, or Parquet through pyarrow). See ``docs/audiences.md``.

An export is read in one repeatable-read snapshot, so it is one consistent state of the
audience however long it takes, and written in pages (memory stays flat).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import psycopg

from tenure.config import Settings
from tenure.errors import TenureError
from tenure.storage import audience_definitions, audience_reads
from tenure.storage.audience_definitions import StoredAudience
from tenure.storage.audience_reads import AudienceSize
from tenure.storage.connection import read_only_snapshot

__all__ = ["COLUMNS", "FORMATS", "Described", "ExportError", "describe", "export", "overview"]

FORMATS: Final = ("csv", "parquet")
COLUMNS: Final = ("audience", "version", "person_id", "channel", "entered_at", "suppressed")
"""The columns of an export, in order: the audience, the version the person entered under,
the person, the audience's channel, when they entered (UTC) and why not to contact them
(empty: contactable)."""


class ExportError(TenureError, ValueError):
    """An export that cannot be made: no such audience, unknown format."""


@dataclass(frozen=True, slots=True)
class Described:
    """An audience's current version and its size."""

    stored: StoredAudience
    size: AudienceSize


def overview(settings: Settings, *, include_retired: bool = False) -> list[Described]:
    """Every current audience with its size, by name."""
    with psycopg.connect(settings.database_url) as conn, read_only_snapshot(conn):
        stored = audience_definitions.current(conn, include_retired=include_retired)
        sizes = audience_reads.sizes(conn)
    return [Described(s, sizes.get(s.definition.name, AudienceSize())) for s in stored]


def describe(settings: Settings, name: str) -> Described | None:
    """One audience (retired or not) with its size; ``None``: no such audience."""
    with psycopg.connect(settings.database_url) as conn, read_only_snapshot(conn):
        stored = audience_definitions.get(conn, name)
        sizes = audience_reads.sizes(conn, name) if stored is not None else {}
    return None if stored is None else Described(stored, sizes.get(name, AudienceSize()))


def _rows(
    stored: StoredAudience, pages: Iterator[list[dict[str, Any]]]
) -> Iterator[list[dict[str, Any]]]:
    channel = str(stored.definition.channel)
    for page in pages:
        yield [
            {
                "audience": stored.definition.name,
                "version": row["version"],
                "person_id": row["person_id"],
                "channel": channel,
                "entered_at": row["entered_at"],
                "suppressed": row["suppressed"],
            }
            for row in page
        ]


def _write_csv(pages: Iterator[list[dict[str, Any]]], out: IO[bytes]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    count = 0
    for page in pages:
        for row in page:
            entered = row["entered_at"].isoformat()
            writer.writerow([*(row[c] for c in COLUMNS[:4]), entered, row["suppressed"] or ""])
        count += len(page)
    text.flush()
    text.detach()
    return count


def _write_parquet(pages: Iterator[list[dict[str, Any]]], out: IO[bytes]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # a declared dependency; only a broken install lacks it
        raise ExportError("Parquet export needs pyarrow (pip install pyarrow)") from exc
    schema = pa.schema(
        [
            ("audience", pa.string()),
            ("version", pa.int32()),
            ("person_id", pa.string()),
            ("channel", pa.string()),
            ("entered_at", pa.timestamp("us", tz="UTC")),
            ("suppressed", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for page in pages:
            writer.write_table(pa.Table.from_pylist(page, schema=schema))
            count += len(page)
    return count


def export(
    settings: Settings,
    name: str,
    fmt: str,
    out: IO[bytes] | Path,
    *,
    include_suppressed: bool = False,
    page_size: int = 10_000,
) -> int:
    """Write the members of audience ``name`` (contactable ones unless
    ``include_suppressed``) as ``fmt`` (:data:`FORMATS`) to ``out`` (a binary stream or a
    file path), columns :data:`COLUMNS` in person id order; return how many rows.

    Raises :class:`ExportError` for an unknown audience or format.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    write = _write_csv if fmt == "csv" else _write_parquet
    with psycopg.connect(settings.database_url) as conn, read_only_snapshot(conn):
        stored = audience_definitions.get(conn, name)
        if stored is None:
            raise ExportError(f"no such audience: {name!r}")
        pages = audience_reads.members(
            conn, name, include_suppressed=include_suppressed, page_size=page_size
        )
        if isinstance(out, Path):
            with out.open("wb") as file:
                return write(_rows(stored, pages), file)
        return write(_rows(stored, pages), out)
