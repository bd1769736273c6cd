"""What Tenure needs of a Kafka-protocol broker it starts itself."""

from __future__ import annotations

import socket
from typing import Protocol


class LocalBroker(Protocol):
    """A broker process Tenure starts and stops (embedded Tansu or Apache Kafka)."""

    name: str
    """Short name of the implementation, e.g. ``tansu`` or ``apache-kafka``."""
    durable: bool
    """Whether topics, offsets and groups survive a restart of the process."""

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        ...

    def start(self, timeout: float = ...) -> None:
        """Start the broker and wait until it answers metadata requests."""
        ...

    def stop(self) -> None:
        """Stop the broker gracefully."""
        ...

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a crash would."""
        ...

    def alive(self) -> bool:
        """Tell whether the broker process runs."""
        ...


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` pairs of a ``host:port[,host:port...]`` list; ValueError if not."""
    addresses = []
    for item in bootstrap.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item.strip()!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def broker_listens(bootstrap: str, timeout: float = 1.0) -> bool:
    """Tell whether any ``host:port`` of ``bootstrap`` accepts a TCP connection."""
    for address in bootstrap_addresses(bootstrap):
        try:
            socket.create_connection(address, timeout=timeout).close()
        except OSError:
            continue
        return True
    return False


def broker_answers(bootstrap: str) -> bool:
    """Tell whether a broker at ``bootstrap`` answers a metadata request.

    A port nobody listens on yet is a plain "no", found without a Kafka client: kafka-python
    logs every refused connection as an ERROR, which made each normal start print
    ``ECONNREFUSED`` while the broker was still starting.
    """
    from kafka import KafkaAdminClient

    if not broker_listens(bootstrap):
        return False

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=3000,
        bootstrap_timeout_ms=5000,  # not kafka-python's 30 s: callers probe again if they wait
        client_id="tenure-probe",
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()
