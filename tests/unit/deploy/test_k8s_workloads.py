"""Every Kubernetes workload in deploy/k8s: probes, disruption budgets, security context.

- HTTP services: readiness on ``/readyz`` (the dependencies), liveness on ``/healthz`` (the
  process's own loop, no dependency), a startup probe.
- Workers: readiness from the worker's own report (``tenure_worker_ready``), run here as
  the real probe script against a real HTTP server; liveness on the metrics port (interim:
  see docs/deploy.md, "Probes").
- A PodDisruptionBudget per Deployment that limits voluntary disruptions without blocking
  a node drain.
- A hardened security context on every pod and container, the setup Job's included, with
  emptyDir volumes for the only writable paths.
- Every document is valid against the Kubernetes API schemas (``kubernetes-validate``,
  strict: an unknown or misspelt field is an error).
"""

from __future__ import annotations

import copy
import functools
import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
HTTP_SERVICES = ("ingest", "query")
WORKERS = ("archiver", "sdk-validator", "projector")
LOOP_LIVENESS = ("archiver", "sdk-validator", "projector")


@functools.cache
def _documents() -> list[dict[str, Any]]:
    """Every manifest document (parsed once; read-only)."""
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.y*ml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _documents() if d["kind"] == kind}


def _workloads() -> dict[str, dict[str, Any]]:
    return {**_by_kind("Deployment"), **_by_kind("Job")}


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _only_container(name: str) -> dict[str, Any]:
    (container,) = _by_kind("Deployment")[name]["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


def _dockerfile_env(name: str) -> str:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(rf"\b{name}=(\S+)", text)
    assert found, f"the Dockerfile sets no {name}"
    return found.group(1)


def test_every_long_running_service_and_the_setup_job_is_checked() -> None:
    assert set(_by_kind("Deployment")) == {*HTTP_SERVICES, *WORKERS}
    assert set(_by_kind("Job")) == {"tenure-setup"}


# --------------------------------------------------------------------------- API schema

KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())
"""The oldest Kubernetes the manifests target and the newest the schemas know."""


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schema(version: str) -> None:
    for doc in _documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(_by_kind("Deployment")["ingest"])
    context = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


# --------------------------------------------------------------------------- security context


@pytest.mark.parametrize("name", sorted(_workloads()))
def test_pod_runs_as_the_image_user_with_the_runtime_seccomp_profile(name: str) -> None:
    pod = _workloads()[name]["spec"]["template"]["spec"]
    context = pod["securityContext"]
    user, group = _dockerfile_user()
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == (user, group)
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False  # Tenure never calls the API server


def _dockerfile_user() -> tuple[int, int]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    (user,) = re.findall(r"^USER (\d+):(\d+)$", text, flags=re.MULTILINE)
    return int(user[0]), int(user[1])


@pytest.mark.parametrize("name", sorted(_workloads()))
def test_containers_are_read_only_unprivileged_and_drop_every_capability(name: str) -> None:
    for container in _containers(_workloads()[name]):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context.get("privileged", False) is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context.get("runAsUser", 10001) != 0, container["name"]


@pytest.mark.parametrize("name", sorted(_workloads()))
def test_writable_paths_are_emptydir_volumes_with_a_size_limit(name: str) -> None:
    pod = _workloads()[name]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for volume in volumes.values():
        assert set(volume) == {"name", "emptyDir"}, volume  # scratch only: no host paths
        assert volume["emptyDir"]["sizeLimit"], volume
    for container in _containers(_workloads()[name]):
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, container["name"]
        assert set(mounts.values()) <= set(volumes), container["name"]
        if name != "tenure-setup":  # faust workers keep their data dir under the state dir
            assert _dockerfile_env("TENURE_STATE_DIR") in mounts, container["name"]


# --------------------------------------------------------------------------- probes


def _port_names(container: dict[str, Any]) -> set[str]:
    return {p["name"] for p in container["ports"]}


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_http_services_ready_on_dependencies_and_live_on_their_own_loop(name: str) -> None:
    container = _only_container(name)
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    startup = container["startupProbe"]["httpGet"]
    assert readiness["path"] == "/readyz"  # checks Postgres (and the broker)
    assert liveness["path"] == "/healthz"  # answered by the event loop, touches nothing
    assert startup["path"] == "/healthz"
    for probe in (readiness, liveness, startup):
        assert probe["port"] == "http" and probe["port"] in _port_names(container)


@pytest.mark.parametrize("name", WORKERS)
def test_workers_live_on_their_metrics_port_and_never_on_a_dependency(name: str) -> None:
    container = _only_container(name)
    for kind in ("livenessProbe", "startupProbe"):
        probe = container[kind]["httpGet"]
        assert probe["port"] == "metrics" and probe["port"] in _port_names(container)
    # Every worker's liveness is its consume loop's heartbeat (tenure/runtime/liveness.py).
    looped = name in LOOP_LIVENESS
    assert container["livenessProbe"]["httpGet"]["path"] == ("/healthz" if looped else "/metrics")
    assert container["startupProbe"]["httpGet"]["path"] == "/metrics"
    assert container["livenessProbe"]["failureThreshold"] >= 3


@pytest.mark.parametrize("name", sorted(_by_kind("Deployment")))
def test_probes_have_timeouts_and_no_initial_delay_guesswork(name: str) -> None:
    container = _only_container(name)
    for kind in ("readinessProbe", "livenessProbe"):
        assert container[kind]["timeoutSeconds"] >= 3, kind
        assert "initialDelaySeconds" not in container[kind], f"{kind}: the startup probe waits"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


class _Metrics(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def metrics_server() -> Iterator[tuple[int, type[_Metrics]]]:
    handler = type("Handler", (_Metrics,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _run_readiness(name: str, port: int | None) -> int:
    """Run the worker's real readiness command, pointed at ``port`` (None: nothing listens)."""
    container = _only_container(name)
    command = container["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    script = command[2]
    own = f"http://127.0.0.1:{container['ports'][0]['containerPort']}/metrics"
    assert own in script, "the probe must read the container's own metrics port"
    if port is None:
        with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics) as closed:
            port = closed.server_address[1]  # bound, then closed: nothing listens there
    done = subprocess.run(
        [sys.executable, "-c", script.replace(own, f"http://127.0.0.1:{port}/metrics")],
        capture_output=True,
        timeout=30,
    )
    return done.returncode


@pytest.mark.parametrize("name", WORKERS)
def test_worker_readiness_follows_the_workers_own_report(
    name: str, metrics_server: tuple[int, type[_Metrics]]
) -> None:
    port, handler = metrics_server
    worker = name
    ready = f'tenure_consumer_lag{{group="g"}} 0.0\ntenure_worker_ready{{worker="{worker}"}} 1.0\n'
    handler.body = ready.encode()
    assert _run_readiness(name, port) == 0
    handler.body = ready.replace("} 1.0", "} 0.0").encode()
    assert _run_readiness(name, port) != 0  # waiting for the database: not ready
    handler.body = b"tenure_consumer_lag 3.0\n"
    assert _run_readiness(name, port) == 0  # a worker that does not report it yet
    assert _run_readiness(name, None) != 0  # /metrics does not answer


# --------------------------------------------------------------------------- disruption budgets


@pytest.mark.parametrize("name", sorted(_by_kind("Deployment")))
def test_every_deployment_has_a_disruption_budget_that_lets_a_drain_proceed(name: str) -> None:
    deployment = _by_kind("Deployment")[name]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budgets = [
        b
        for b in _by_kind("PodDisruptionBudget").values()
        if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1, f"{name}: {len(budgets)} PodDisruptionBudgets select its pods"
    (budget,) = budgets
    assert budget["apiVersion"] == "policy/v1"
    assert budget["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    replicas = deployment["spec"]["replicas"]
    spec = budget["spec"]
    if "maxUnavailable" in spec:
        assert spec["maxUnavailable"] == 1
    else:
        assert 0 < spec["minAvailable"] < replicas, "a budget that blocks every drain"
