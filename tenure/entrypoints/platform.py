"""The platform's process (``tenure up``): the supervisor (``tenure.platform.supervisor``)
starts the embedded broker and Postgres when their variables are unset, then every service
and worker as a child ``tenure`` command, and watches them until Ctrl-C."""

from __future__ import annotations

import sys

from rich.console import Console

from tenure.config import TenureConfig
from tenure.entrypoints.bootstrap import stop_on_signals
from tenure.platform.status import redact_url
from tenure.platform.supervisor import Platform
from tenure.runtime.process import StartupError

console = Console(stderr=True)


def run(config: TenureConfig, *, demo: bool = False) -> int:
    """Start the platform, say where everything is, watch it until SIGINT or SIGTERM, stop it.

    Returns the exit status: 1 when it did not start. When stdout is not a terminal, the
    endpoints are also printed there as one JSON object (for scripts).
    """
    platform = Platform(config, demo=demo)
    stop = stop_on_signals()
    try:
        with console.status("starting Tenure ..."):
            status = platform.start()
    except (StartupError, OSError) as exc:
        platform.stop()
        console.print(f"[red]Tenure did not start:[/red] {exc}")
        return 1
    except BaseException:
        platform.stop()
        raise
    console.print("[green]Tenure is up.[/green] Ctrl-C stops everything.")
    console.print(
        f"  ingest      {status.ingest_url}/v1/events  (OpenAPI: {status.ingest_url}/docs)"
    )
    console.print(
        f"  query       {status.query_url}/v1/persons  (OpenAPI: {status.query_url}/docs)"
    )
    for name, url in status.metrics_urls.items():
        console.print(f"  metrics     {name}: {url}")
    console.print(f"  kafka       {status.kafka_bootstrap} ({status.broker})")
    postgres = redact_url(status.database_url)
    console.print(f"  postgres    {postgres} ({status.postgres}; password: `tenure status --json`)")
    console.print(f"  logs        {config.state_dir / 'logs'}")
    console.print("  tokens      tenure token create --producer NAME [--scope read]")
    console.print("  rebuild     tenure replay [--metrics-port PORT]")
    console.print(f"  dashboard   {status.dashboard_url}", soft_wrap=True, highlight=False)
    if not sys.stdout.isatty():  # scripts reading our output get the endpoints as JSON
        print(status.to_json(redact=True), flush=True)
    try:
        platform.watch(stop)
    finally:
        console.print("stopping Tenure ...")
        platform.stop()
    return 0
