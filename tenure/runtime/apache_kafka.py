"""Apache Kafka, the correctness reference: fetched from Maven Central, run with ``java``.

The jars are resolved once with Maven (``mvn dependency:copy-dependencies`` on a small pom)
into a cache folder and reused; a single-node KRaft log dir is formatted before first start.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from tenure.runtime.broker import broker_answers
from tenure.runtime.process import ManagedProcess, ProcessBackedServer, StartupError, free_port

KAFKA_VERSION = "4.1.1"
"""The Apache Kafka release used as the reference broker."""

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.tenure</groupId><artifactId>apache-kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""


def new_cluster_id() -> str:
    """A random KRaft cluster id as Kafka's ``Uuid.randomUuid()`` makes it.

    The id is the URL-safe base64 form of 16 random bytes. Kafka redraws an id whose text
    starts with ``-`` (a command line would read it as an option); so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def storage_format_argv(classpath: str, cluster_id: str, config: Path) -> list[str]:
    """The ``StorageTool format`` command line for ``cluster_id``.

    Values go in ``--option=value`` form, so no value can be read as an option, whatever
    character it starts with (an id given from outside may start with ``-``).
    """
    return [
        "java",
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",
        f"--config={config}",
    ]


def cache_dir() -> Path:
    """Folder that keeps downloaded broker jars between runs (``TENURE_CACHE_DIR``)."""
    return Path(os.environ.get("TENURE_CACHE_DIR") or Path.home() / ".cache" / "tenure")


def java_and_maven_missing() -> str | None:
    """Say what is missing to run Apache Kafka here, or ``None`` when Java and Maven exist."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH (Apache Kafka needs Java 17+ and Maven)"
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    first = out.splitlines()[0] if out else ""
    try:
        major = int(first.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        return f"cannot read the Java version from {first!r}"
    if major < 17:
        return f"Java {major} found; Apache Kafka {KAFKA_VERSION} needs Java 17+"
    return None


def fetch_kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """Return the folder with Apache Kafka's runtime jars, fetching them with Maven if needed."""
    target = cache_dir() / f"apache-kafka-{version}"
    libs = target / "libs"
    marker = target / ".complete"
    if marker.exists():
        return libs
    target.mkdir(parents=True, exist_ok=True)
    (target / "pom.xml").write_text(_POM.format(version=version))
    shutil.rmtree(libs, ignore_errors=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(target / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StartupError(
            f"Maven could not fetch Apache Kafka {version}:\n{result.stdout[-2000:]}"
            f"{result.stderr[-2000:]}"
        )
    marker.write_text(version)
    return libs


class ApacheKafkaBroker(ProcessBackedServer):
    """A single-node Apache Kafka (KRaft, combined broker and controller) on 127.0.0.1."""

    name = "apache-kafka"
    durable = True

    def __init__(
        self, root: Path, port: int = 0, partitions: int = 4, cluster_id: str | None = None
    ) -> None:
        self.root = root
        self.cluster_id = cluster_id or new_cluster_id()
        self.port = port or free_port()
        self.controller_port = free_port()
        self.partitions = partitions
        self.log_path = root / "kafka.log"
        self.process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.root / "data"),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": str(self.partitions),
            "auto.create.topics.enable": "false",
        }
        path = self.root / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.root / "log4j2.yaml").write_text(_LOG4J2)
        return path

    def start(self, timeout: float = 90.0) -> None:
        """Fetch the jars if needed, format the log dir on first start, start the broker."""
        libs = fetch_kafka_jars()
        self.root.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        classpath = f"{libs}/*"
        if not (self.root / "data" / "meta.properties").exists():
            result = subprocess.run(
                storage_format_argv(classpath, self.cluster_id, config),
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise StartupError(f"formatting the KRaft log dir failed: {result.stderr}")
        self.process = ManagedProcess(
            "apache-kafka",
            [
                "java",
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseSerialGC",
                f"-Dlog4j2.configurationFile={self.root / 'log4j2.yaml'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(config),
            ],
            self.log_path,
        )
        self.process.start()
        self.process.wait_ready(lambda: broker_answers(self.bootstrap), timeout)
