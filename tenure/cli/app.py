"""The ``tenure`` command: it parses the arguments, builds the settings once
(:mod:`tenure.cli.preflight`) and calls an entry point's ``run`` (:mod:`tenure.entrypoints`).

Options that name a port or an interface (``--port``, ``--metrics-port``, ``--host``) take
the place of the matching setting before the settings are checked.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import datetime

import typer
from rich.console import Console
from rich.progress import TaskID

from tenure.cli.preflight import (
    SettingError,
    command_settings,
    configuration,
    database_url,
    entry_settings,
    kafka_bootstrap,
    platform_config,
)

app = typer.Typer(
    help="Tenure: live customer and user lifecycle projections.", no_args_is_help=True
)
serve_app = typer.Typer(help="Run an HTTP service.", no_args_is_help=True)
worker_app = typer.Typer(help="Run a stream worker.", no_args_is_help=True)
token_app = typer.Typer(help="Manage producer tokens.", no_args_is_help=True)
topics_app = typer.Typer(help="Manage Kafka topics.", no_args_is_help=True)
app.add_typer(serve_app, name="serve")
app.add_typer(worker_app, name="worker")
app.add_typer(token_app, name="token")
app.add_typer(topics_app, name="topics")

console = Console(stderr=True)


def installed_version() -> str:
    """The version of the installed ``tenure`` distribution."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tenure")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"tenure {installed_version()}")
        raise typer.Exit()


@app.callback()
def tenure_options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    """Tenure: live customer and user lifecycle projections."""


@app.command()
def up(
    demo: bool = typer.Option(
        False, "--demo", help="Also feed a simulated population (tenure simulate --follow)."
    ),
) -> None:
    """Start the platform (embedded broker and Postgres unless configured), until Ctrl-C."""
    from tenure.entrypoints import platform

    code = platform.run(platform_config(configuration()), demo=demo)
    if code:
        raise typer.Exit(code)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Print where the running platform's endpoints are (exit 1 when none runs).

    The plain form hides the database password; ``--json`` (for scripts) carries it.
    """
    import json

    from tenure.platform.status import read_status

    config = configuration()
    current = read_status(config.state_dir)
    if current is None:
        if as_json:
            print('{"running": false}')
        else:
            console.print(f"Tenure is not running (state dir {config.state_dir}).")
        raise typer.Exit(1)
    if as_json:  # whole, for scripts (the status file is the owner's only)
        print(current.to_json())
    else:
        for key, value in sorted(json.loads(current.to_json(redact=True)).items()):
            print(f"{key:16} {value}")


@app.command("migrate")
def migrate_command() -> None:
    """Apply database migrations (idempotent)."""
    import psycopg

    from tenure.storage.migrations import migrate

    config = configuration()
    with psycopg.connect(database_url(config)) as conn:
        applied = migrate(conn)
    console.print(
        f"applied {len(applied)} migration(s): "
        f"{', '.join(f'{m.version:04d}_{m.name}' for m in applied) or 'none needed'}"
    )


@topics_app.command("create")
def topics_create() -> None:
    """Create Tenure's topics with explicit partition counts."""
    from tenure.eventlog.admin import ensure_topics

    config = configuration()
    created = ensure_topics(
        kafka_bootstrap(config), config.topic_partitions, config.topic_replication
    )
    console.print(f"created {len(created)} topic(s): {', '.join(created) or 'all existed'}")


@token_app.command("create")
def token_create(
    producer: str = typer.Option(..., "--producer", "--name", help="Who the token is for."),
    scope: str = typer.Option(
        "ingest", help="ingest (send events), read (query API) or audiences:write."
    ),
) -> None:
    """Create a token and print it (it is shown only once)."""
    import psycopg

    from tenure.storage.tokens import create_token

    config = configuration()
    with psycopg.connect(database_url(config)) as conn:
        try:
            print(create_token(conn, producer, scope))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None


@token_app.command("list")
def token_list() -> None:
    """List tokens (ids and producers, never secrets)."""
    import psycopg

    from tenure.storage.tokens import list_tokens

    config = configuration()
    with psycopg.connect(database_url(config)) as conn:
        for t in list_tokens(conn):
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            print(
                f"{t.token_id}  {t.producer:24}  {t.scope:6}  "
                f"{t.created_at:%Y-%m-%d %H:%M}  {state}"
            )


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (the hex part after ``tnr_``)."""
    import psycopg

    from tenure.storage.tokens import revoke_token

    config = configuration()
    with psycopg.connect(database_url(config)) as conn:
        if not revoke_token(conn, token_id):
            console.print(f"no active token {token_id}")
            raise typer.Exit(1)
    console.print(f"revoked {token_id}")


def _parse_instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an RFC 3339 instant") from None
    if instant.tzinfo is None:
        raise typer.BadParameter("the instant needs an offset, e.g. 2026-11-01T00:00:00Z")
    return instant


@app.command()
def replay(
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Derive views as of this RFC 3339 instant, e.g. 2026-11-01T00:00:00Z "
        "(default: the watermark).",
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Serve the replay's progress on this port's /metrics while it runs "
        "(tenure_replay_progress_ratio{phase}, tenure_replay_running).",
    ),
    metrics_hold: float = typer.Option(
        0.0,
        "--metrics-hold",
        min=0.0,
        help="With --metrics-port: keep /metrics up this many seconds after the replay ends, "
        "so a scraper sees the finished state.",
    ),
) -> None:
    """Rebuild every lifecycle read model from the durable archive and swap it in."""
    from rich.progress import Progress

    from tenure.entrypoints import replay as entry

    settings = command_settings(configuration())
    instant = _parse_instant(as_of) if as_of else None
    if metrics_port is not None:
        console.print(f"replay progress on http://127.0.0.1:{metrics_port}/metrics")
    with Progress(console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(total, 1))
            bar.update(tasks[phase], completed=done, total=max(total, 1))

        result = entry.run(settings, as_of=instant, metrics_port=metrics_port, progress=progress)
    console.print(
        f"replayed {result.events} events (archive seq {result.archive_seq}) as of "
        f"{result.as_of.isoformat() if result.as_of else '-'}: "
        f"{result.persons} persons, {result.devices} devices"
    )
    if metrics_port is not None and metrics_hold > 0:
        time.sleep(metrics_hold)


@serve_app.command("ingest")
def serve_ingest(
    host: str = typer.Option(None, help="Interface (default TENURE_INGEST_HOST)."),
    port: int = typer.Option(None, help="Port (default TENURE_INGEST_PORT)."),
) -> None:
    """Serve the ingest API (POST /v1/events) with /metrics and /healthz."""
    from tenure.entrypoints import ingest

    config = configuration()
    config = replace(
        config, ingest_host=host or config.ingest_host, ingest_port=port or config.ingest_port
    )
    ingest.run(entry_settings(config, kafka=True))


@serve_app.command("query")
def serve_query(
    host: str = typer.Option(None, help="Interface (default TENURE_INGEST_HOST)."),
    port: int = typer.Option(None, help="Port (default TENURE_QUERY_PORT)."),
) -> None:
    """Serve the query API (persons, devices) with /metrics and /healthz."""
    from tenure.entrypoints import query

    config = configuration()
    config = replace(
        config, ingest_host=host or config.ingest_host, query_port=port or config.query_port
    )
    query.run(entry_settings(config, kafka=False))


@worker_app.command("archiver")
def worker_archiver(
    metrics_port: int = typer.Option(None, help="Port of /metrics."),
) -> None:
    """Archive every event of the canonical topics in Postgres."""
    from tenure.entrypoints import archiver

    config = configuration()
    config = replace(config, archiver_metrics_port=metrics_port or config.archiver_metrics_port)
    archiver.run(entry_settings(config, kafka=True))


@worker_app.command("sdk-validator")
def worker_sdk_validator(
    metrics_port: int = typer.Option(None, help="Port of /metrics."),
) -> None:
    """Validate events written by SDK clients; forward or dead-letter them (faust)."""
    from tenure.entrypoints import sdk_validator

    config = configuration()
    config = replace(
        config, sdk_validator_metrics_port=metrics_port or config.sdk_validator_metrics_port
    )
    # the database holds the token vault and the dead letters
    sdk_validator.run(entry_settings(config, kafka=True))


@worker_app.command("projector")
def worker_projector(
    metrics_port: int = typer.Option(None, help="Port of /metrics."),
    stages: str = typer.Option(
        "all",
        help="all; or a comma-separated list of apply (the hot path), derive (read models"
        " and transitions) and follow (publishing them; the audience and aggregates stages):"
        " stages run in separate processes each get an interpreter of their own.",
    ),
) -> None:
    """Project the canonical topics into lifecycle state, read models and transitions."""
    from tenure.entrypoints import projector

    try:
        chosen = projector.parse_stages(stages)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--stages") from None
    config = configuration()
    config = replace(config, projector_metrics_port=metrics_port or config.projector_metrics_port)
    projector.run(entry_settings(config, kafka=True), chosen)


from tenure.cli.simulate import simulate_command  # noqa: E402

app.command("simulate")(simulate_command)

from tenure.cli.pipeline import register as register_pipeline_commands  # noqa: E402

register_pipeline_commands(app)

from tenure.cli.audiences import register as register_audience_commands  # noqa: E402

register_audience_commands(app)


def main() -> None:
    """Entry point of the ``tenure`` command: a setting that cannot work is one line, exit 2."""
    try:
        app()
    except SettingError as exc:
        print(f"tenure: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
