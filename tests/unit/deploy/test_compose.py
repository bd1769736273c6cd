"""Offline checks of the production shape: docker-compose.yml, Dockerfile and deploy/.

There is no container engine in CI, so nothing here starts a container. The Compose file is
validated by the ``compose-spec`` bindings (a strict parser: unknown keys, malformed ports and
bad depends_on conditions are errors) and cross-checked structurally with PyYAML against the
Prometheus config, the Grafana provisioning, the Kubernetes manifests and the Tenure CLI.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import compose_spec
import pytest
import yaml

from tenure.config import TenureConfig
from tenure.runtime.cpu_priority import cpu_weight
from tenure.runtime.postgres import SERVER_SETTINGS
from tests.cli_introspection import tenure_commands

REPO = Path(__file__).resolve().parents[3]
COMPOSE_PATH = REPO / "docker-compose.yml"
DEPLOY = REPO / "deploy"
PROMETHEUS_PATH = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
K8S = DEPLOY / "k8s"

# The `tenure` subcommands the deployment may run, and the options each accepts, read from
# the real CLI: a compose command naming a command or option the CLI lacks fails here.
TENURE_COMMANDS: dict[tuple[str, ...], frozenset[str]] = tenure_commands()

TENURE_ENV = frozenset(
    {
        "TENURE_KAFKA_BOOTSTRAP",
        "TENURE_DATABASE_URL",
        "TENURE_TOPIC_PARTITIONS",
        "TENURE_TOPIC_REPLICATION",
        "TENURE_FUTURE_TOLERANCE_S",
        "TENURE_LOG_LEVEL",
        "TENURE_INGEST_HOST",
    }
)

ONE_SHOT = ("migrate", "topics")
HTTP_SERVICES = ("ingest", "query")
WORKERS = ("archiver", "sdk-validator", "projector")
LONG_RUNNING = HTTP_SERVICES + WORKERS
TENURE_SERVICES = ONE_SHOT + LONG_RUNNING
REQUIRED_SERVICES = frozenset({"kafka", "postgres", "prometheus", "grafana", *TENURE_SERVICES})

# Expected (subcommand, listen port) per Tenure service, as the brief fixes them.
EXPECTED_COMMANDS: dict[str, tuple[tuple[str, ...], int | None]] = {
    "migrate": (("migrate",), None),
    "topics": (("topics", "create"), None),
    "ingest": (("serve", "ingest"), 8080),
    "query": (("serve", "query"), 8081),
    "archiver": (("worker", "archiver"), 9101),
    "sdk-validator": (("worker", "sdk-validator"), 9102),
    "projector": (("worker", "projector"), 9103),
}


# --------------------------------------------------------------------------- helpers


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    doc = yaml.safe_load(compose_text)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def parse_tenure_command(argv: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Split ``argv`` (without the ``tenure`` entrypoint) into a known subcommand and options."""
    for sub, allowed in TENURE_COMMANDS.items():
        if tuple(argv[: len(sub)]) != sub:
            continue
        rest = argv[len(sub) :]
        assert len(rest) % 2 == 0, f"options of {sub} must be --name value pairs: {rest}"
        options = dict(zip(rest[::2], rest[1::2], strict=True))
        unknown = set(options) - allowed
        assert not unknown, f"unknown options {sorted(unknown)} for `tenure {' '.join(sub)}`"
        return sub, options
    raise AssertionError(f"`tenure {' '.join(argv)}` is not a known tenure subcommand")


def listen_port(options: dict[str, str]) -> int | None:
    port = options.get("--port") or options.get("--metrics-port")
    return int(port) if port is not None else None


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _volumes(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return (type, source, target) for every volume of a service."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((vol["type"], vol["source"], vol["target"]))
            continue
        source, target, *_ = vol.split(":")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        out.append((kind, source, target))
    return out


def _bind_target(service: dict[str, Any], repo_relative: str) -> str:
    for kind, source, target in _volumes(service):
        if kind == "bind" and (REPO / source).resolve() == (REPO / repo_relative).resolve():
            return target
    raise AssertionError(f"{repo_relative} is not bind-mounted")


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for port in service.get("ports") or []:
        ports.add(int(str(port).rsplit(":", 1)[-1].split("/")[0]))
    return ports


# --------------------------------------------------------------------------- compose: spec


def test_compose_file_validates(compose_text: str, services: dict[str, Any]) -> None:
    parsed = compose_spec.PyCompose.from_yaml(compose_text)
    parsed.validate()
    parsed.validate_volumes()
    parsed.validate_networks()
    assert set(parsed.service_names()) == set(services)


def _mutated(compose: dict[str, Any], mutate: Any) -> str:
    doc = yaml.safe_load(yaml.safe_dump(compose))  # deep copy, aliases expanded
    mutate(doc["services"])
    return yaml.safe_dump(doc, sort_keys=False)


def test_round_tripped_compose_still_validates(compose: dict[str, Any]) -> None:
    # The negative tests below mutate this round-tripped text: it must be valid unmutated.
    compose_spec.PyCompose.from_yaml(_mutated(compose, lambda s: None)).validate()


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda s: s["ingest"].update(bogus_option=True), "bogus_option"),
        (lambda s: s["ingest"].update(ports=["80a80:8080"]), "port"),
        (
            lambda s: s["ingest"]["depends_on"]["migrate"].update(condition="sometimes"),
            "sometimes",
        ),
        (lambda s: s["postgres"]["healthcheck"].update(interval="fivesec"), "fivesec"),
    ],
    ids=["unknown-key", "malformed-port", "bad-condition", "bad-duration"],
)
def test_validator_rejects_broken_compose(compose: dict[str, Any], mutate: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        compose_spec.PyCompose.from_yaml(_mutated(compose, mutate)).validate()


# --------------------------------------------------------------------------- compose: shape


def test_every_required_service_exists(services: dict[str, Any]) -> None:
    missing = REQUIRED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


@pytest.mark.parametrize("name", TENURE_SERVICES)
def test_tenure_service_runs_a_real_subcommand(services: dict[str, Any], name: str) -> None:
    sub, options = parse_tenure_command(_argv(services[name]["command"]))
    expected_sub, expected_port = EXPECTED_COMMANDS[name]
    assert sub == expected_sub
    assert listen_port(options) == expected_port
    if "--host" in options:
        assert options["--host"] == "0.0.0.0", "a service in a container must listen on all"


@pytest.mark.parametrize("name", TENURE_SERVICES)
def test_tenure_services_share_image_and_environment(
    compose: dict[str, Any], services: dict[str, Any], name: str
) -> None:
    service = services[name]
    shared = compose["x-tenure"]
    assert service["image"] == "tenure:dev"
    assert service["build"] == shared["build"]
    assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert _env(service) == {k: str(v) for k, v in shared["environment"].items()}
    assert set(_env(service)) == TENURE_ENV


def test_shared_environment_points_at_compose_kafka_and_postgres(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    env = {k: str(v) for k, v in compose["x-tenure"]["environment"].items()}
    for server in env["TENURE_KAFKA_BOOTSTRAP"].split(","):
        assert f"PLAINTEXT://{server}" in _env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    url = urlsplit(env["TENURE_DATABASE_URL"])
    assert url.scheme == "postgresql"
    assert url.netloc.endswith("@postgres:5432")
    assert url.path == "/${POSTGRES_DB:-tenure}"
    assert env["TENURE_TOPIC_PARTITIONS"] == "${TENURE_TOPIC_PARTITIONS:-4}"
    assert env["TENURE_TOPIC_REPLICATION"] == "${TENURE_TOPIC_REPLICATION:-1}"


def test_secrets_are_only_overridable_local_defaults(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in _env(service).items():
            if "PASSWORD" in key:
                assert re.fullmatch(r"\$\{[A-Z_]+:-[^}]*\}", value), f"{name}.{key}"
            if key == "TENURE_DATABASE_URL":
                # user and password both come from ${VAR:-local default}
                userinfo = r"\$\{POSTGRES_USER:-[^}]*\}:\$\{POSTGRES_PASSWORD:-[^}]*\}"
                assert re.fullmatch(rf"postgresql://{userinfo}@[^@]+", value), name


def test_depends_on_targets_exist_and_conditions_are_meaningful(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {target: {"condition": "service_started"} for target in depends}
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if spec["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not one-shot"


def test_setup_runs_before_the_services(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in LONG_RUNNING:
        depends = services[name]["depends_on"]
        for one_shot in ONE_SHOT:
            assert depends[one_shot]["condition"] == "service_completed_successfully", name
        for infra in ("kafka", "postgres"):
            assert depends[infra]["condition"] == "service_healthy", name


def test_mounted_host_paths_exist_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for kind, source, _target in _volumes(service):
            if kind == "bind":
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_kafka_is_a_single_kraft_broker_controller(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env = _env(kafka)
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert voters == [f"{node_id}@kafka:9093"]
    listeners = env["KAFKA_LISTENERS"]
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] + "://" in listeners
    protocol_map = dict(
        p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    for listener in listeners.split(","):
        assert listener.split("://")[0] in protocol_map
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_postgres_18_keeps_data_in_a_volume_and_reports_health(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:18"
    # Postgres 18 images refuse a mount at /var/lib/postgresql/data.
    assert ("volume", "postgres-data", "/var/lib/postgresql") in _volumes(postgres)
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_postgres_runs_with_the_embedded_defaults_settings(services: dict[str, Any]) -> None:
    settings = [arg for name, value in SERVER_SETTINGS for arg in ("-c", f"{name}={value}")]
    assert services["postgres"]["command"] == ["postgres", *settings, "-c", "shared_buffers=1GB"]


@pytest.mark.parametrize("name", WORKERS)
def test_workers_can_scale_out(services: dict[str, Any], name: str) -> None:
    worker = services[name]
    assert "ports" not in worker, "fixed host ports break `docker compose up --scale`"
    assert "container_name" not in worker


def test_intake_yields_the_cpu_as_tenure_up_makes_it(services: dict[str, Any]) -> None:
    # `tenure up` lowers the intake's sessions to TENURE_INTAKE_NICE; on one compose host the
    # same share is the containers' CPU weight.
    weight = cpu_weight(TenureConfig.from_env({}).intake_nice)
    shares = {name: int(service.get("cpu_shares", 1024)) for name, service in services.items()}
    assert {name for name, share in shares.items() if share != 1024} == {"ingest", "archiver"}
    assert shares["ingest"] == shares["archiver"] == weight


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_probe_their_own_port(services: dict[str, Any], name: str) -> None:
    service = services[name]
    _sub, options = parse_tenure_command(_argv(service["command"]))
    probe = " ".join(service["healthcheck"]["test"])
    path = "/healthz" if name in HTTP_SERVICES else "/metrics"
    assert f"http://127.0.0.1:{listen_port(options)}{path}" in probe
    if name in HTTP_SERVICES:
        assert _container_ports(service) == {listen_port(options)}


# --------------------------------------------------------------------------- Prometheus


def _scrape_targets(config: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    jobs: dict[str, list[tuple[str, int]]] = {}
    for job in config["scrape_configs"]:
        targets = []
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets.append((host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            assert dns["type"] == "A"
            targets.extend((host, int(dns["port"])) for host in dns["names"])
        jobs[job["job_name"]] = targets
    return jobs


def test_prometheus_scrapes_every_service_on_its_port(services: dict[str, Any]) -> None:
    jobs = _scrape_targets(_load(PROMETHEUS_PATH))
    assert set(jobs) == set(LONG_RUNNING)
    for job, targets in jobs.items():
        assert targets, job
        for host, port in targets:
            assert host in services, f"{job} scrapes unknown service {host}"
            _sub, options = parse_tenure_command(_argv(services[host]["command"]))
            assert port == listen_port(options), f"{job}: {host}:{port}"


def test_prometheus_finds_every_projector_replica_by_dns() -> None:
    config = _load(PROMETHEUS_PATH)
    (projector,) = [j for j in config["scrape_configs"] if j["job_name"] == "projector"]
    assert projector["dns_sd_configs"] == [
        {"names": ["projector"], "type": "A", "port": 9103, "refresh_interval": "15s"}
    ]
    assert "static_configs" not in projector


def test_projector_runs_two_replicas(services: dict[str, Any]) -> None:
    assert services["projector"]["deploy"]["replicas"] == 2


def test_prometheus_container_reads_the_repo_config(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    target = _bind_target(prometheus, "deploy/prometheus/prometheus.yml")
    assert f"--config.file={target}" in prometheus["command"]
    assert 9090 in _container_ports(prometheus)


# --------------------------------------------------------------------------- Grafana


def test_grafana_mounts_provisioning_and_dashboards(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    assert _bind_target(grafana, "deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    assert _bind_target(grafana, "deploy/grafana/dashboards") == "/var/lib/grafana/dashboards"
    assert (GRAFANA / "dashboards" / "README.md").is_file()


def test_grafana_datasources(services: dict[str, Any]) -> None:
    config = _load(GRAFANA / "provisioning" / "datasources" / "datasources.yml")
    assert config["apiVersion"] == 1
    by_uid = {ds["uid"]: ds for ds in config["datasources"]}
    assert set(by_uid) == {"prometheus", "tenure-postgres"}

    prometheus = by_uid["prometheus"]
    assert prometheus["type"] == "prometheus"
    url = urlsplit(prometheus["url"])
    assert url.hostname in services
    assert url.port in _container_ports(services[url.hostname])

    postgres = by_uid["tenure-postgres"]
    assert postgres["type"] in {"grafana-postgresql-datasource", "postgres"}
    host, port = postgres["url"].split(":")
    assert host in services and services[host]["image"].startswith("postgres:")
    assert port == "5432"
    assert postgres["jsonData"]["database"] == "tenure"
    # Every $VAR Grafana expands must be set on the grafana service.
    referenced = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", json.dumps(postgres)))
    assert referenced, "credentials must come from the environment"
    assert referenced <= set(_env(services["grafana"]))


def test_grafana_dashboard_provider_reads_the_mounted_folder(services: dict[str, Any]) -> None:
    config = _load(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == _bind_target(
        services["grafana"], "deploy/grafana/dashboards"
    )
    for dashboard in (GRAFANA / "dashboards").glob("*.json"):
        json.loads(dashboard.read_text(encoding="utf-8"))


def test_every_grafana_provisioning_file_parses() -> None:
    files = sorted((GRAFANA / "provisioning").rglob("*.y*ml"))
    assert {f.parent.name for f in files} == {"datasources", "dashboards"}
    for path in files:
        assert isinstance(_load(path), dict), path


# --------------------------------------------------------------------------- Kubernetes


def _k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path, doc))
    return docs


def _k8s(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _p, d in _k8s_documents() if d["kind"] == kind}


def test_k8s_manifests_parse_and_are_named() -> None:
    docs = _k8s_documents()
    assert docs
    for path, doc in docs:
        assert doc.get("apiVersion"), path
        assert doc.get("kind"), path
        assert doc.get("metadata", {}).get("name"), path
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "tenure", path
    assert "tenure" in _k8s("Namespace")


def test_k8s_config_and_secret_hold_tenure_settings() -> None:
    (config,) = _k8s("ConfigMap").values()
    (secret,) = _k8s("Secret").values()
    assert set(config["data"]) <= TENURE_ENV
    assert set(secret["stringData"]) == {"TENURE_DATABASE_URL"}
    assert set(config["data"]) | set(secret["stringData"]) == TENURE_ENV
    assert all(isinstance(v, str) for v in config["data"].values())


def _pod_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    pod = spec["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _assert_env_sources_exist(container: dict[str, Any]) -> None:
    configmaps, secrets = _k8s("ConfigMap"), _k8s("Secret")
    for source in container["envFrom"]:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in configmaps
        else:
            assert source["secretRef"]["name"] in secrets


def test_k8s_deployments_match_the_compose_services(services: dict[str, Any]) -> None:
    deployments = _k8s("Deployment")
    assert set(deployments) == set(LONG_RUNNING)
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        (container,) = _pod_containers(spec)
        assert container["args"] == _argv(services[name]["command"]), name
        _sub, options = parse_tenure_command(container["args"])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert list(ports.values()) == [listen_port(options)], name
        # probes, disruption budgets and security context: test_k8s_workloads.py
        _assert_env_sources_exist(container)
    assert all(d["spec"]["replicas"] >= 1 for d in deployments.values())


def test_k8s_services_select_deployments_on_declared_ports() -> None:
    deployments = _k8s("Deployment")
    for name, service in _k8s("Service").items():
        selected = [
            d
            for d in deployments.values()
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, name
        (container,) = _pod_containers(selected[0]["spec"])
        port_names = {p["name"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, name


def test_k8s_setup_job_migrates_then_creates_topics() -> None:
    jobs = _k8s("Job")
    assert set(jobs) == {"tenure-setup"}
    containers = _pod_containers(jobs["tenure-setup"]["spec"])
    steps = [parse_tenure_command(c["args"])[0] for c in containers]
    assert steps == [("migrate",), ("topics", "create")]
    for container in containers:
        _assert_env_sources_exist(container)


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def test_dockerfile_builds_a_non_root_tenure_image() -> None:
    instructions = _dockerfile()
    froms = [args.split()[0] for ins, args in instructions if ins == "FROM"]
    assert froms and all(image == "python:3.11-slim" for image in froms)
    final_stage = instructions[
        max(i for i, (ins, _a) in enumerate(instructions) if ins == "FROM") :
    ]
    users = [args for ins, args in final_stage if ins == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    (entrypoint,) = [args for ins, args in instructions if ins == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["tenure"]


def test_dockerfile_copies_what_the_distribution_needs() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set()
    for ins, args in _dockerfile():
        if ins == "COPY" and not args.startswith("--from"):
            copied.update(args.split()[:-1])
    wanted = {"pyproject.toml", pyproject["project"]["readme"], *packages}
    assert wanted <= copied, f"Dockerfile does not copy {sorted(wanted - copied)}"
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not wanted & ignored, f".dockerignore excludes {sorted(wanted & ignored)}"
    for package in packages:
        assert (REPO / package).is_dir(), package


def test_dockerfile_installs_the_wheel_it_builds() -> None:
    instructions = _dockerfile()
    last_from = max(i for i, (ins, _a) in enumerate(instructions) if ins == "FROM")
    build_runs = [args for ins, args in instructions[:last_from] if ins == "RUN"]
    final_runs = [args for ins, args in instructions[last_from:] if ins == "RUN"]
    assert "pip wheel --wheel-dir /wheels ." in build_runs
    (install,) = [run for run in final_runs if "pip install" in run]
    assert "from=build,source=/wheels" in install and "--no-index --find-links /wheels tenure" in (
        install
    )
