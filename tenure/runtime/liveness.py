"""Liveness of a worker's own consume loop: a heartbeat the loop updates on every turn, and
the worker's metrics server answering ``/healthz`` from it.

Kubernetes restarts a pod whose liveness probe fails. A worker's probe used to hit
``/metrics``, served by a thread that answers even when the consume loop is stuck; now
``/healthz`` on the same port answers 503 once the loop has not turned for
``stale_after_s``. A loop waiting out a database outage still turns (its backoff beats), so a
database blip does not restart every pod; readiness (``tenure_worker_ready``) covers that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

__all__ = ["LOOP", "STALE_AFTER_S", "Heartbeat", "metrics_and_liveness", "serve"]

STALE_AFTER_S = 120.0
"""How long a consume loop may go without turning before ``/healthz`` fails (a batch write
or a backoff wait is far shorter; the group join at start is ~3-23 s)."""


class Heartbeat:
    """When a loop last turned (monotonic seconds); the process start counts as a turn."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = clock()

    def beat(self) -> None:
        """The loop turned."""
        self._at = self._clock()

    def age_s(self) -> float:
        """Seconds since the loop last turned."""
        return self._clock() - self._at


LOOP = Heartbeat()
"""The consume loop of this process (each worker process runs one)."""

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_and_liveness(
    heartbeat: Heartbeat, stale_after_s: float = STALE_AFTER_S
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A WSGI app: ``/healthz`` is 200 while ``heartbeat`` is fresher than ``stale_after_s``,
    else 503; every other path is prometheus_client's metrics app."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        age = heartbeat.age_s()
        if age < stale_after_s:
            status, body = "200 OK", b'{"status":"ok"}'
        else:
            status = "503 Service Unavailable"
            body = b'{"status":"stuck","loop_idle_s":%d}' % int(age)
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds: no access log."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve(port: int, addr: str, heartbeat: Heartbeat | None) -> None:
    """Serve ``/metrics`` and, with a ``heartbeat``, ``/healthz`` (:func:`metrics_and_liveness`)
    on a daemon thread; without one, every path is the metrics app (as before)."""
    app = make_wsgi_app() if heartbeat is None else metrics_and_liveness(heartbeat)
    server = make_server(addr, port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
