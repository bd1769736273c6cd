"""What Tenure needs of a Kafka-protocol broker it starts itself."""

from __future__ import annotations

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


def broker_answers(bootstrap: str) -> bool:
    """Tell whether a broker at ``bootstrap`` answers a metadata request."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=3000, client_id="tenure-probe"
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()
