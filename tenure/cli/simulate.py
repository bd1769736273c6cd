"""``tenure simulate``: send a demo population with known truth through the real ingest path.

The lead registers it with ``app.command("simulate")(simulate_command)``. The population
comes from :mod:`tenure.simulation`; this module only paces, batches and posts it.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tenure.config import TenureConfig
from tenure.errors import TenureError
from tenure.simulation import Delivery, Simulation, SimulationParameters, simulate

DEFAULT_REPLAY_SECONDS = 120.0
"""Without ``--speed``, the whole simulated span is replayed in about this many seconds."""
LINGER_S = 0.5
"""A partial batch waits at most this long (real time) for more due deliveries."""
MAX_ATTEMPTS = 10
"""A batch answered 503 (or not answered) is retried this many times in all."""


class IngestRefused(TenureError):
    """The ingest service answered something other than per-event results or 503."""


@dataclass(slots=True)
class SendReport:
    """What the ingest service said about everything sent: ``sent`` = the sum of the rest."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    rejections: list[dict[str, Any]] = field(default_factory=list)
    """The first few rejected results (index, id, field, reason)."""

    @property
    def rate(self) -> float:
        """Events sent per real second."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class IngestClient:
    """Posts batches to ``{ingest_url}/v1/events``, retrying 503s and lost connections."""

    def __init__(
        self,
        ingest_url: str,
        token: str,
        stop: threading.Event,
        *,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = f"{ingest_url.rstrip('/')}/v1/events"
        self.stop = stop
        self.client = client or httpx.Client(timeout=timeout_s)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    def post(self, envelopes: list[dict[str, Any]], report: SendReport) -> None:
        """Send one batch and add the service's per-event answer to ``report``."""
        body = orjson.dumps(envelopes)
        backoff = 0.25
        for attempt in range(1, MAX_ATTEMPTS + 1):
            wait = backoff
            try:
                reply = self.client.post(self.url, content=body, headers=self.headers)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise IngestRefused(f"ingest unreachable at {self.url}: {exc}") from exc
            else:
                if reply.status_code in (200, 422):
                    self._count(reply.json(), len(envelopes), report)
                    return
                if reply.status_code != 503 or attempt == MAX_ATTEMPTS:
                    raise IngestRefused(f"ingest answered {reply.status_code}: {reply.text[:300]}")
                wait = max(backoff, float(reply.headers.get("Retry-After", "0") or 0))
            report.retries += 1
            if self.stop.wait(wait):
                raise IngestRefused("interrupted while retrying")
            backoff = min(backoff * 2, 10.0)

    @staticmethod
    def _count(answer: dict[str, Any], size: int, report: SendReport) -> None:
        report.requests += 1
        report.sent += size
        report.accepted += int(answer["accepted"])
        report.duplicates += int(answer["duplicates"])
        report.rejected += int(answer["rejected"])
        for result in answer["results"]:
            if result["status"] == "rejected" and len(report.rejections) < 5:
                report.rejections.append(result)


@dataclass(frozen=True, slots=True)
class Pace:
    """Maps simulated send times to real time.

    During the span, ``speed`` simulated seconds pass per real second (``None``: no waiting
    at all). After the span, the simulated clock is the wall clock: a delivery is sent when
    its ``send_at`` comes, never before, so no event is ever ahead of the receiver's clock.
    """

    span_start: datetime
    span_end: datetime
    speed: float | None
    real_start: float

    def due(self, send_at: datetime) -> float:
        """The ``time.monotonic()`` reading at which a delivery is due."""
        if send_at > self.span_end:
            return time.monotonic() + (send_at - datetime.now(UTC)).total_seconds()
        if self.speed is None:
            return self.real_start
        return self.real_start + (send_at - self.span_start).total_seconds() / self.speed


def send(
    deliveries: Iterable[Delivery],
    ingest: IngestClient,
    pace: Pace,
    report: SendReport,
    *,
    batch_size: int = 200,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Post ``deliveries`` in order, paced, in batches of at most ``batch_size``.

    A batch goes out when it is full, or when its first delivery has waited ``LINGER_S``.
    Stops early (the partial batch unsent) when ``ingest.stop`` is set.
    """
    stop = ingest.stop
    batch: list[dict[str, Any]] = []
    opened = 0.0
    started = time.monotonic()

    def flush() -> None:
        ingest.post(batch, report)
        if on_batch is not None:
            on_batch(len(batch))
        batch.clear()

    try:
        for delivery in deliveries:
            due = pace.due(delivery.send_at)
            while True:
                now = time.monotonic()
                if batch and now - opened >= LINGER_S:
                    flush()
                if due <= now:
                    break
                until = min(due, opened + LINGER_S) if batch else due
                if stop.wait(max(until - now, 0.0)):
                    report.interrupted = True
                    return
            if stop.is_set():
                report.interrupted = True
                return
            if not batch:
                opened = time.monotonic()
            batch.append(delivery.envelope)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    finally:
        report.seconds += time.monotonic() - started


@contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (or SIGTERM) while the block runs, in the main thread only."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _platform_defaults(
    config: TenureConfig, ingest_url: str | None, token: str | None
) -> tuple[str, str]:
    """Fill in the ingest URL and a fresh token from the running ``tenure up``."""
    if ingest_url and token:
        return ingest_url, token
    from tenure.platform.status import read_status

    status = read_status(config.state_dir)
    if ingest_url is None:
        if status is None:
            raise typer.BadParameter(
                f"no `tenure up` is running in {config.state_dir}; pass --ingest-url",
                param_hint="--ingest-url",
            )
        ingest_url = status.ingest_url
    if token is None:
        database_url = config.database_url or (status.database_url if status else None)
        if database_url is None:
            raise typer.BadParameter(
                "no database to create a token in (no `tenure up`, TENURE_DATABASE_URL unset)",
                param_hint="--token",
            )
        import psycopg

        from tenure.storage.tokens import create_token

        with psycopg.connect(database_url) as conn:
            token = create_token(conn, "simulator")
    return ingest_url, token


def _print_truth(console: Console, simulation: Simulation) -> None:
    params = simulation.parameters
    shares = ", ".join(f"{name} {share:.0%}" for name, share in params.shares.normalised())
    table = Table(title="Truth of the simulated span (what dashboards should find)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("parameters", f"seed {params.seed}, {params.people} arrivals, {params.days} d")
    table.add_row("persona shares", shares)
    for what, value in simulation.truth.rows():
        table.add_row(what, value)
    console.print(table)


def _print_report(console: Console, report: SendReport) -> None:
    console.print(
        f"sent {report.sent}  accepted {report.accepted}  duplicates {report.duplicates}  "
        f"rejected {report.rejected}  ({report.requests} requests, {report.retries} retries, "
        f"{report.seconds:.1f} s, {report.rate:.0f} events/s)"
    )
    for rejection in report.rejections:
        console.print(f"  [red]rejected[/red] {rejection}")


def simulate_command(
    ingest_url: str | None = typer.Option(
        None,
        "--ingest-url",
        help="Ingest service base URL (default: that of the running `tenure up`).",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="TENURE_TOKEN",
        show_envvar=True,
        help="Producer token (default: a new one for producer 'simulator', in the platform's "
        "database). Prefer the TENURE_TOKEN environment variable: a command line is visible "
        "to every user in `ps`.",
    ),
    people: int = typer.Option(500, "--people", min=0, help="People who arrive on their own."),
    days: int = typer.Option(365, "--days", min=1, help="Simulated span, ending now."),
    seed: int = typer.Option(42, "--seed", help="Seed: the same seed sends the same events."),
    speed: float | None = typer.Option(
        None,
        "--speed",
        min=0.001,
        help="Simulated seconds per real second (default: the whole span in about 2 minutes).",
    ),
    as_fast_as_possible: bool = typer.Option(
        False, "--as-fast-as-possible", help="Send the span without waiting."
    ),
    batch_size: int = typer.Option(200, "--batch-size", min=1, max=1000, help="Events per POST."),
    follow: bool = typer.Option(
        False, "--follow", help="After the span, keep the population living in real time, forever."
    ),
    follow_rate: float = typer.Option(
        60.0, "--follow-rate", min=0.0, help="With --follow: new people per hour."
    ),
    print_truth: bool = typer.Option(
        True, "--print-truth/--no-print-truth", help="Print the truth summary."
    ),
    source_prefix: str = typer.Option(
        "urn:tenure:simulator", "--source-prefix", help="CloudEvents source prefix."
    ),
) -> None:
    """Send a simulated population (known truth) through the ingest service."""
    from tenure.cli.preflight import configuration

    config = configuration()  # a wrong setting is one line; logging as every Tenure process
    console = Console()
    ingest_url, token = _platform_defaults(config, ingest_url, token)
    end = datetime.now(UTC).replace(microsecond=0)
    params = replace(
        SimulationParameters(),
        people=people,
        days=days,
        start=end - timedelta(days=days),
        seed=seed,
        source_prefix=source_prefix,
    )
    with console.status("generating the population ..."):
        simulation = simulate(params)
    span_s = (params.end - params.start).total_seconds()
    pace_speed = None if as_fast_as_possible else (speed or span_s / DEFAULT_REPLAY_SECONDS)
    report = SendReport()
    with _stop_on_ctrl_c() as stop:
        ingest = IngestClient(ingest_url, token, stop)
        pace = Pace(params.start, params.end, pace_speed, time.monotonic())
        try:
            with Progress(console=console, transient=True, disable=not sys.stdout.isatty()) as bar:
                task = bar.add_task("sending the span", total=len(simulation.deliveries))
                send(
                    simulation.deliveries,
                    ingest,
                    pace,
                    report,
                    batch_size=batch_size,
                    on_batch=lambda n: bar.advance(task, n),
                )
                if follow and not report.interrupted:
                    live = bar.add_task("following (Ctrl-C stops)", total=None)
                    send(
                        simulation.continuation(follow_rate),
                        ingest,
                        pace,
                        report,
                        batch_size=batch_size,
                        on_batch=lambda n: bar.advance(live, n),
                    )
        except IngestRefused as exc:
            _print_report(console, report)
            console.print(f"[red]stopped:[/red] {exc}")
            raise typer.Exit(2) from None
        finally:
            ingest.close()
    if print_truth:
        _print_truth(console, simulation)
    _print_report(console, report)
    if report.rejected:
        console.print(f"[red]{report.rejected} event(s) rejected[/red]")
        raise typer.Exit(1)
    if report.interrupted and not follow:  # with --follow, Ctrl-C is the normal end
        raise typer.Exit(130)
