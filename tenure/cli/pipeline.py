"""``tenure deadletters list|redrive`` and ``tenure catch-up``: operating the pipeline's
dead letters and the projection's convergence (the work: :mod:`tenure.entrypoints.pipeline`)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

deadletters_app = typer.Typer(
    help="List and re-drive records the pipeline's stages dead-lettered.", no_args_is_help=True
)
console = Console(stderr=True)


@deadletters_app.command("list")
def list_command(
    stage: str | None = typer.Option(None, "--stage", help="Only this stage's letters."),
    include_redriven: bool = typer.Option(
        False, "--all", help="Also letters already re-driven (default: pending only)."
    ),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List dead letters: id, stage, reason class, where from, the reason."""
    import psycopg

    from tenure.cli.preflight import configuration, database_url
    from tenure.storage.dead_letters import list_letters

    with psycopg.connect(database_url(configuration())) as conn:
        letters = list_letters(conn, stage=stage, pending_only=not include_redriven, limit=limit)
    for d in letters:
        if as_json:
            print(
                json.dumps(
                    {
                        "id": d.id, "stage": d.stage, "category": d.category,
                        "reason": d.reason, "field": d.field, "origin": d.origin,
                        "topic": d.topic, "partition": d.kafka_partition,
                        "offset": d.kafka_offset, "archive_seq": d.archive_seq,
                        "occurrences": d.occurrences,
                        "first_seen_at": d.first_seen_at.isoformat(),
                        "last_seen_at": d.last_seen_at.isoformat(),
                        "redriven_at": d.redriven_at.isoformat() if d.redriven_at else None,
                        "redrive_count": d.redrive_count,
                        "payload": d.payload.decode(errors="replace"),
                    }
                )
            )  # fmt: skip
        else:
            state = f"redriven {d.redriven_at:%Y-%m-%d %H:%M}" if d.redriven_at else "pending"
            print(
                f"{d.id:>8}  {d.stage:14} {d.category:14} {d.origin[:48]:48} "
                f"x{d.occurrences} {state}  {d.reason[:120]}"
            )
    if not as_json:
        console.print(f"{len(letters)} dead letter(s)")


@deadletters_app.command("redrive")
def redrive_command(
    ids: list[int] = typer.Argument(None, help="Ids of the letters to re-drive."),
    everything: bool = typer.Option(False, "--all", help="Every pending letter (of --stage)."),
    stage: str | None = typer.Option(None, "--stage", help="Only this stage's letters."),
) -> None:
    """Give dead letters back to their stage: republish, re-apply or re-queue; mark them."""
    from tenure.cli.preflight import command_settings, configuration
    from tenure.entrypoints.pipeline import redrive_letters

    if not ids and not everything:
        raise typer.BadParameter("give letter ids, or --all")
    settings = command_settings(configuration(), kafka=True)
    done = redrive_letters(settings, None if everything else ids, stage=stage)
    console.print(
        f"re-drove {done.total} dead letter(s): {done.republished} republished, "
        f"{done.reapplied} re-applied, {done.requeued} re-queued; {done.skipped} left pending"
    )
    if done.skipped:
        raise typer.Exit(1)


def catch_up_command(
    from_start: bool = typer.Option(
        False, "--from-start", help="Re-apply the whole archive, not only after the checkpoint."
    ),
) -> None:
    """Bring the live projection's raw states up to every archived event (from the
    convergence checkpoint); poison events are dead-lettered."""
    from tenure.cli.preflight import command_settings, configuration
    from tenure.entrypoints.pipeline import catch_up

    done = catch_up(command_settings(configuration(), kafka=True), from_start=from_start)
    console.print(
        f"archive seq {done.checkpoint_before} -> {done.checkpoint}: re-applied "
        f"{done.applied} event(s), dead-lettered {done.dead_lettered}"
    )


def register(app: typer.Typer) -> None:
    """Add ``deadletters`` and ``catch-up`` to the ``tenure`` command."""
    app.add_typer(deadletters_app, name="deadletters")
    app.command("catch-up")(catch_up_command)
