"""Creating Tenure's topics with explicit partition counts."""

from __future__ import annotations

import logging
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tenure.contract.topics import ALL_TOPICS, COMPACTED_TOPICS

log = logging.getLogger(__name__)


def ensure_topics(
    bootstrap: str,
    partitions: int,
    replication: int = 1,
    topics: tuple[str, ...] = ALL_TOPICS,
    timeout: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (partition counts are not changed: Kafka keys map to
    partitions by count, so growing a topic would move keys).
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tenure-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(t, partitions, replication, topic_configs=_configs(t))
                        for t in missing
                    ],
                    timeout_ms=int(timeout * 1000),
                )
            except TopicAlreadyExistsError:
                pass  # another process won the race
        _wait_for_metadata(admin, topics, timeout)
        log.info("topics ready (%d created): %s", len(missing), ", ".join(topics))
        return missing
    finally:
        admin.close()


def _configs(topic: str) -> dict[str, str]:
    """The configs a topic is created with: compaction for :data:`COMPACTED_TOPICS`."""
    return {"cleanup.policy": "compact"} if topic in COMPACTED_TOPICS else {}


def _wait_for_metadata(admin: KafkaAdminClient, topics: tuple[str, ...], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            described = admin.describe_topics(list(topics))
            if all(d.get("partitions") and d.get("error_code", 0) == 0 for d in described):
                return
        except KafkaError as exc:
            log.debug("topic metadata not ready: %s", exc)
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not ready after {timeout:.0f} s: {topics}")
        time.sleep(0.2)
