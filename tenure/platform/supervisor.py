"""``tenure up``: start what is needed, watch it, stop all of it on Ctrl-C.

Embedded parts (Postgres, the Tansu broker) are started only when their environment variable
is unset. Services and workers run as child processes in their own process groups, so
stopping the supervisor leaves no orphan. If the embedded broker dies, the supervisor
restarts it, recreates the topics, publishes again what the broker lost (the acknowledged
events the archive lacks, kept in ``ingest_pending``) and restarts the Kafka clients. If
the embedded Postgres dies, the supervisor starts it again (its rows survive); services and
workers wait for it and recover by themselves.

The supervisor never dies of a child's error or of a failed recovery step: a step that
fails (e.g. republishing while Postgres is away) is logged, listed as pending in the
status file and tried again later.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from tenure.config import TenureConfig
from tenure.eventlog.admin import ensure_topics
from tenure.eventlog.publisher import EventPublisher
from tenure.eventlog.recovery import republish_unarchived
from tenure.platform.status import PlatformStatus, clear_status, write_status
from tenure.runtime.postgres import EmbeddedPostgres
from tenure.runtime.process import ManagedProcess, StartupError, free_port, port_open
from tenure.runtime.tansu import TansuBroker
from tenure.storage.migrations import migrate

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 5
"""Connect timeout of the supervisor's own database work (recovery steps)."""
RETRY_MAX_S = 30.0
"""Longest wait between two attempts of a failed recovery step or Postgres restart."""
RECOVERY_STEPS = ("topics", "republish", "catch-up")
"""What a broker recovery does after the broker is back, in order."""


def probe_host(host: str) -> str:
    """The address to reach a server listening on ``host`` from this machine."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass
class ChildSpec:
    """A service or worker the supervisor runs and restarts."""

    name: str
    args: list[str]
    ready_port: int
    ready_path: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment (secrets go here, never into ``args``: ``ps`` shows those)."""
    intake: bool = False
    """It takes events in where waiting is felt by producers or by nobody (the ingest API's
    replies, archiving, the demo feed): under CPU contention it yields to the projection
    (``TENURE_INTAKE_NICE``). The SDK validator is not: its events would only wait in the
    raw topic instead of the derive queue."""
    process: ManagedProcess | None = None
    restarts: int = 0
    next_restart: float = 0.0


@dataclass
class Platform:
    """The running platform and its parts."""

    config: TenureConfig
    demo: bool = False
    postgres: EmbeddedPostgres | None = None
    broker: TansuBroker | None = None
    children: list[ChildSpec] = field(default_factory=list)
    database_url: str = ""
    kafka_bootstrap: str = ""
    broker_recoveries: int = 0
    ingest_url: str = ""
    query_url: str = ""
    metrics_urls: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    dashboard_url: str = ""
    dashboard_token_id: str = ""
    pending_recovery: list[str] = field(default_factory=list)
    """Recovery steps that failed and are tried again (see :data:`RECOVERY_STEPS`)."""
    next_recovery_try: float = 0.0
    recovery_failures: int = 0
    next_postgres_try: float = 0.0
    postgres_failures: int = 0

    @property
    def logs(self) -> Path:
        """Folder for the children's logs."""
        return self.config.state_dir / "logs"

    def start(self) -> PlatformStatus:
        """Start every part and return where they are."""
        state = self.config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        if self.config.database_url:
            self.database_url = self.config.database_url
        else:
            self.postgres = EmbeddedPostgres(state / "postgres", self.config.embedded_postgres_port)
            self.postgres.start()
            self.database_url = self.postgres.url
        with psycopg.connect(self.database_url) as conn:
            applied = migrate(conn)
        log.info("migrations applied: %s", [m.version for m in applied] or "none (up to date)")
        if self.config.kafka_bootstrap:
            self.kafka_bootstrap = self.config.kafka_bootstrap
        else:
            self.broker = TansuBroker(self.logs, self.config.embedded_broker_port)
            self.broker.start()
            self.kafka_bootstrap = self.broker.bootstrap
        ensure_topics(
            self.kafka_bootstrap, self.config.topic_partitions, self.config.topic_replication
        )
        self._recover_lost_events()
        self._catch_up_projection()
        ingest_port = self.config.ingest_port or free_port()
        query_port = self.config.query_port or free_port()
        archiver_port = self.config.archiver_metrics_port or free_port()
        validator_port = self.config.sdk_validator_metrics_port or free_port()
        projector_port = self.config.projector_metrics_port or free_port()
        deriver_port = self.config.deriver_metrics_port or free_port()
        follower_port = self.config.follower_metrics_port or free_port()
        host = self.config.ingest_host
        self.children = [
            ChildSpec(
                "ingest",
                ["serve", "ingest", "--host", host, "--port", str(ingest_port)],
                ingest_port,
                "/healthz",
                intake=True,
            ),
            ChildSpec(
                "query",
                ["serve", "query", "--host", host, "--port", str(query_port)],
                query_port,
                "/healthz",
            ),
            ChildSpec(
                "archiver",
                ["worker", "archiver", "--metrics-port", str(archiver_port)],
                archiver_port,
                intake=True,
            ),
            ChildSpec(
                "sdk-validator",
                ["worker", "sdk-validator", "--metrics-port", str(validator_port)],
                validator_port,
            ),
            # The projector's three stages in three processes: each has an interpreter of
            # its own (docs/projection.md, "Processes").
            ChildSpec(
                "projector",
                ["worker", "projector", "--stages", "apply",
                 "--metrics-port", str(projector_port)],
                projector_port,
            ),
            ChildSpec(
                "deriver",
                ["worker", "projector", "--stages", "derive",
                 "--metrics-port", str(deriver_port)],
                deriver_port,
            ),
            ChildSpec(
                "follower",
                ["worker", "projector", "--stages", "follow",
                 "--metrics-port", str(follower_port)],
                follower_port,
            ),
        ]  # fmt: skip
        for child in self.children:
            self._start_child(child)
        for child in self.children:
            self._wait_child(child)
        reach = _url_host(probe_host(host))
        self.ingest_url = f"http://{reach}:{ingest_port}"
        self.query_url = f"http://{reach}:{query_port}"
        self.metrics_urls = {
            "ingest": f"{self.ingest_url}/metrics",
            "query": f"{self.query_url}/metrics",
            "archiver": f"http://{reach}:{archiver_port}/metrics",
            "sdk-validator": f"http://{reach}:{validator_port}/metrics",
            "projector": f"http://{reach}:{projector_port}/metrics",
            "deriver": f"http://{reach}:{deriver_port}/metrics",
            "follower": f"http://{reach}:{follower_port}/metrics",
        }
        self.started_at = datetime.now(UTC).isoformat()
        self._create_dashboard_link()
        if self.demo:
            self._start_demo()
        return self.publish_status()

    def _create_dashboard_link(self) -> None:
        """A read token for the built-in dashboard page, carried in the URL fragment."""
        from tenure.storage.tokens import create_token

        with psycopg.connect(self.database_url) as conn:
            token = create_token(conn, "dashboard", "read")
        self.dashboard_token_id = token.split("_")[1]
        self.dashboard_url = f"{self.query_url}/dashboard#token={token}"

    def _revoke_dashboard_link(self) -> None:
        """Revoke the dashboard's read token (the link stops working with the platform)."""
        if not self.dashboard_token_id:
            return
        from tenure.storage.tokens import revoke_token

        try:
            with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                revoke_token(conn, self.dashboard_token_id)
        except psycopg.Error as exc:
            log.warning("could not revoke the dashboard token: %s", exc)
        self.dashboard_token_id = ""

    def _start_demo(self) -> None:
        """Feed a simulated population through the ingest API, then keep it coming."""
        from tenure.storage.tokens import create_token

        with psycopg.connect(self.database_url) as conn:
            token = create_token(conn, "demo")
        demo = ChildSpec(
            "demo",
            ["simulate", "--follow", "--ingest-url", self.ingest_url,
             "--seed", str(int(time.time()))],
            0,
            env={"TENURE_TOKEN": token},  # not on the command line: `ps` shows those
            intake=True,
        )  # fmt: skip
        self.children.append(demo)
        self._start_child(demo)

    def publish_status(self) -> PlatformStatus:
        """Write (and return) the status file for scripts and other commands."""
        processes = {c.name: c.process.pid for c in self.children if c.process and c.process.pid}
        if self.postgres and self.postgres.process and self.postgres.process.pid:
            processes["postgres"] = self.postgres.process.pid
        if self.broker and self.broker.process and self.broker.process.pid:
            processes["broker"] = self.broker.process.pid
        status = PlatformStatus(
            pid=os.getpid(),
            started_at=self.started_at,
            ingest_url=self.ingest_url,
            query_url=self.query_url,
            dashboard_url=self.dashboard_url,
            metrics_urls=self.metrics_urls,
            kafka_bootstrap=self.kafka_bootstrap,
            database_url=self.database_url,
            broker="embedded tansu (memory-only)" if self.broker else "external",
            postgres="embedded" if self.postgres else "external",
            processes=processes,
            broker_recoveries=self.broker_recoveries,
            postgres_restarts=self.postgres.restarts if self.postgres else 0,
            pending_recovery=list(self.pending_recovery),
        )
        write_status(self.config.state_dir, status)
        return status

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TENURE_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        env["TENURE_DATABASE_URL"] = self.database_url
        env["TENURE_STATE_DIR"] = str(self.config.state_dir)
        return env

    def _start_child(self, child: ChildSpec) -> None:
        env = self._child_env() | child.env
        if child.intake and self.postgres is not None:  # its sessions yield inside Postgres too
            env["TENURE_DATABASE_SESSION_NICE"] = str(self.config.intake_nice)
        child.process = ManagedProcess(
            child.name,
            [sys.executable, "-m", "tenure.cli.app", *child.args],
            self.logs / f"{child.name}.log",
            env=env,
            cpu_nice=self.config.intake_nice if child.intake else 0,
        )
        child.process.start()

    def _wait_child(self, child: ChildSpec, timeout: float = 60.0) -> None:
        assert child.process is not None
        port, path = child.ready_port, child.ready_path
        if not port:
            return  # nothing to probe (the demo feeder)
        host = probe_host(self.config.ingest_host)

        def ready() -> bool:
            if path is None:
                return port_open(host, port)
            url = f"http://{_url_host(host)}:{port}{path}"
            return httpx.get(url, timeout=2).status_code == 200

        child.process.wait_ready(ready, timeout)

    def _recover_lost_events(self) -> None:
        publisher = EventPublisher(self.kafka_bootstrap)
        try:
            with psycopg.connect(self.database_url, connect_timeout=DATABASE_TIMEOUT_S) as conn:
                republish_unarchived(conn, publisher)
        finally:
            publisher.close()

    def _catch_up_projection(self) -> None:
        """Re-apply the archive after the convergence checkpoint: the lost broker may have
        held records not projected yet."""
        from psycopg_pool import ConnectionPool

        from tenure.projection.catch_up import converge_projection

        with ConnectionPool(
            self.database_url,
            min_size=1,
            max_size=1,
            kwargs={"connect_timeout": DATABASE_TIMEOUT_S},
            timeout=2 * DATABASE_TIMEOUT_S,
            open=False,
        ) as pool:
            pool.wait(timeout=2 * DATABASE_TIMEOUT_S)
            n = converge_projection(pool)
        log.warning("re-applied %d archived events to the live projection", n)

    def _recovery_step(self, step: str) -> None:
        """Run one step of :data:`RECOVERY_STEPS`."""
        if step == "topics":
            ensure_topics(
                self.kafka_bootstrap, self.config.topic_partitions, self.config.topic_replication
            )
        elif step == "republish":
            self._recover_lost_events()
        elif step == "catch-up":
            self._catch_up_projection()
        else:  # pragma: no cover - RECOVERY_STEPS is closed
            raise ValueError(f"unknown recovery step {step!r}")

    def run_pending_recovery(self) -> bool:
        """Run the pending recovery steps in order; True when none is left.

        A failing step is logged and stays pending (with the ones after it) until the next
        attempt, which is made later with a growing delay (at most :data:`RETRY_MAX_S`).
        """
        while self.pending_recovery:
            step = self.pending_recovery[0]
            try:
                self._recovery_step(step)
            except Exception as exc:
                self.recovery_failures += 1
                delay = min(RETRY_MAX_S, 2.0**self.recovery_failures)
                self.next_recovery_try = time.monotonic() + delay
                log.error(
                    "recovery step %r failed (%s: %s); trying again in %.0f s",
                    step,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                return False
            self.pending_recovery.pop(0)
            log.info("recovery step %r done", step)
        self.recovery_failures = 0
        return True

    def watch(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Restart what dies until ``stop`` is set; never raise (errors are logged)."""
        while not stop.wait(poll_s):
            try:
                self.supervise_once()
            except Exception:
                log.exception("supervision failed; trying again in %.0f s", poll_s)

    def supervise_once(self) -> None:
        """One round of supervision: Postgres, the broker, pending recovery, the children."""
        if self.postgres is not None and not self.postgres.alive():
            self.recover_postgres()
        if self.broker is not None and not self.broker.alive():
            self.recover_broker()
            return
        if self.pending_recovery and time.monotonic() >= self.next_recovery_try:
            if self.run_pending_recovery():
                log.warning("broker recovery complete")
            self.publish_status()
        for child in self.children:
            if child.process is not None and not child.process.alive():
                if time.monotonic() < child.next_restart:
                    continue
                child.restarts += 1
                child.next_restart = time.monotonic() + min(RETRY_MAX_S, 2.0**child.restarts)
                log.warning(
                    "%s exited (code %s); restarting (restart %d), see %s",
                    child.name,
                    child.process.popen.returncode if child.process.popen else None,
                    child.restarts,
                    child.process.log_path,
                )
                try:
                    self._start_child(child)
                except OSError as exc:
                    log.error("%s could not be started: %s", child.name, exc)
                self.publish_status()

    def recover_postgres(self) -> None:
        """Start the embedded Postgres again after it died; its rows survive a crash.

        Services and workers keep running: they report not-ready and wait for the database.
        A failed start is logged and tried again later.
        """
        assert self.postgres is not None
        if time.monotonic() < self.next_postgres_try:
            return
        process = self.postgres.process
        code = process.popen.returncode if process and process.popen else None
        log.warning("embedded Postgres died (code %s); restarting it", code)
        started = time.monotonic()
        try:
            self.postgres.restart()
        except Exception as exc:
            self.postgres_failures += 1
            delay = min(RETRY_MAX_S, 2.0**self.postgres_failures)
            self.next_postgres_try = time.monotonic() + delay
            log.error(
                "embedded Postgres did not start (%s); trying again in %.0f s, see %s",
                exc,
                delay,
                self.postgres.log_path,
            )
            return
        self.postgres_failures = 0
        log.warning(
            "embedded Postgres is back after %.1f s (restart %d)",
            time.monotonic() - started,
            self.postgres.restarts,
        )
        self.publish_status()

    def recover_broker(self) -> None:
        """Restart the embedded broker and everything that talks to it; republish lost events.

        Raises only when the broker itself does not start (the next round tries again);
        the steps after that are :meth:`run_pending_recovery`'s.
        """
        assert self.broker is not None
        self.broker_recoveries += 1
        log.warning("embedded broker died; restarting it (recovery %d)", self.broker_recoveries)
        for child in self.children:
            if child.process is not None:
                child.process.stop(timeout=5)
        self.broker.start()
        self.pending_recovery = list(RECOVERY_STEPS)
        self.recovery_failures = 0
        self.run_pending_recovery()
        for child in self.children:
            try:
                self._start_child(child)
            except OSError as exc:
                log.error("%s could not be started: %s", child.name, exc)
        for child in self.children:
            try:
                self._wait_child(child)
            except StartupError as exc:
                log.error("%s did not come back: %s", child.name, exc)
        self.publish_status()

    def stop(self) -> None:
        """Stop workers and services, then the broker, then Postgres."""
        for child in reversed(self.children):
            if child.process is not None:
                child.process.stop(timeout=10)
        if self.broker is not None:
            self.broker.stop()
        self._revoke_dashboard_link()
        if self.postgres is not None:
            self.postgres.stop()
        clear_status(self.config.state_dir)
