"""``tenure audiences list|show|export|follow``: parses the arguments; the work is
:mod:`tenure.entrypoints.audiences`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

audiences_app = typer.Typer(
    help="Audiences: who to reach, on which channel, how rarely (docs/audiences.md).",
    no_args_is_help=True,
)
console = Console(stderr=True)


def _size_line(contactable: int, suppressed: dict[str, int]) -> str:
    parts = ", ".join(f"{reason} {count}" for reason, count in suppressed.items())
    return f"{contactable} contactable; suppressed: {parts}"


@audiences_app.command("list")
def list_command(
    include_retired: bool = typer.Option(False, "--all", help="Also retired audiences."),
) -> None:
    """Every audience: name, version, channel, quiet days, members, contactable and
    suppressed by reason."""
    from tenure.cli.preflight import command_settings, configuration
    from tenure.entrypoints.audiences import overview

    for found in overview(command_settings(configuration()), include_retired=include_retired):
        d = found.stored.definition
        retired = "  retired" if found.stored.retired else ""
        print(
            f"{d.name:24} v{d.version:<3} {d.channel:7} quiet {d.quiet_days:>3}d  "
            f"{found.size.members:>6} members: "
            f"{_size_line(found.size.contactable, found.size.suppressed)}{retired}"
        )


@audiences_app.command("show")
def show_command(name: str = typer.Argument(..., help="The audience's name.")) -> None:
    """One audience: its definition (JSON) and its size."""
    from tenure.cli.preflight import command_settings, configuration
    from tenure.entrypoints.audiences import describe

    found = describe(command_settings(configuration()), name)
    if found is None:
        console.print(f"no such audience: {name!r}")
        raise typer.Exit(1)
    document = {
        **found.stored.definition.to_document(),
        "source": found.stored.source,
        "created_at": found.stored.created_at.isoformat(),
        "retired_at": found.stored.retired_at and found.stored.retired_at.isoformat(),
    }
    print(json.dumps(document, indent=2))
    console.print(f"{found.size.members} members: " + _size_line(
        found.size.contactable, found.size.suppressed
    ))  # fmt: skip


@audiences_app.command("export")
def export_command(
    name: str = typer.Argument(..., help="The audience's name."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet (through pyarrow)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file (default: standard output)."
    ),
    include_suppressed: bool = typer.Option(
        False, "--include-suppressed", help="Also members not to be contacted now."
    ),
) -> None:
    """Write an audience's members as CSV or Parquet: audience, version, person_id,
    channel, entered_at, suppressed."""
    from tenure.cli.preflight import command_settings, configuration
    from tenure.entrypoints.audiences import ExportError, export

    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise typer.BadParameter("Parquet is binary: give --output FILE or redirect stdout")
    try:
        count = export(
            command_settings(configuration()), name, fmt,
            sys.stdout.buffer if output is None else output,
            include_suppressed=include_suppressed,
        )  # fmt: skip
    except ExportError as exc:
        console.print(str(exc))
        raise typer.Exit(1) from None
    console.print(f"exported {count} member(s) of {name}" + (f" to {output}" if output else ""))


@audiences_app.command("follow")
def follow_command(
    name: str | None = typer.Argument(None, help="Only this audience's changes (default: all)."),
    group: str | None = typer.Option(
        None, "--group", help="Consumer group: go on from its committed position."
    ),
    from_now: bool = typer.Option(
        False, "--from-now", help="Without --group: only changes published from now on."
    ),
    idle_timeout: float | None = typer.Option(
        None, "--idle-timeout", min=0.0, help="Stop after this many seconds without a record."
    ),
    max_lines: int | None = typer.Option(None, "--max", min=1, help="Stop after N changes."),
) -> None:
    """Print each entry, exit and suppression change on tenure.audiences.v1 as a JSON line
    (the CloudEvent; de-duplicate on its id)."""
    from tenure.cli.preflight import configuration, kafka_bootstrap
    from tenure.entrypoints.audience_follow import FollowError, follow

    try:
        followed = follow(
            kafka_bootstrap(configuration()), sys.stdout, audience=name, group=group,
            from_beginning=not from_now, idle_timeout_s=idle_timeout, max_lines=max_lines,
        )  # fmt: skip
    except FollowError as exc:
        console.print(str(exc))
        raise typer.Exit(1) from None
    console.print(f"{followed.lines} change(s)" + (f" of {name}" if name else ""))


def register(app: typer.Typer) -> None:
    """Add ``audiences`` to the ``tenure`` command."""
    app.add_typer(audiences_app, name="audiences")
