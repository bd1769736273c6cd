"""A worker's ``/healthz`` follows its consume loop's heartbeat, not the metrics thread."""

from __future__ import annotations

import urllib.error
import urllib.request

from tenure.runtime.liveness import Heartbeat, metrics_and_liveness, serve
from tenure.runtime.process import free_port


class Clock:
    """Seconds that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(app, path: str) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    got: list[str] = []
    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda s, h: got.append(s)))
    return got[0], body


def test_healthz_fails_once_the_loop_stops_turning() -> None:
    clock = Clock()
    heartbeat = Heartbeat(clock)
    app = metrics_and_liveness(heartbeat, stale_after_s=30)
    assert answer(app, "/healthz")[0].startswith("200")  # the start counts as a turn
    clock.now += 29
    assert answer(app, "/healthz")[0].startswith("200")
    clock.now += 2
    status, body = answer(app, "/healthz")
    assert status.startswith("503") and b'"loop_idle_s":31' in body
    heartbeat.beat()
    assert answer(app, "/healthz")[0].startswith("200")
    metrics_status, metrics = answer(app, "/metrics")
    assert metrics_status.startswith("200") and b"# HELP" in metrics


def test_the_metrics_port_serves_both_over_http() -> None:
    clock = Clock()
    heartbeat = Heartbeat(clock)
    port = free_port()
    serve(port, "127.0.0.1", heartbeat)
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
        assert reply.status == 200
    clock.now += 3600
    try:
        urllib.request.urlopen(f"{base}/healthz", timeout=5)
        raise AssertionError("a stale loop must fail the probe")
    except urllib.error.HTTPError as exc:
        assert exc.code == 503
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
        assert b"# HELP" in reply.read()
