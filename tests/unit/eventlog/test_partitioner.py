"""The ingest producer's partitioner places every record where kafka-python's default does."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from kafka.cluster import ClusterMetadata
from kafka.partitioner.default import DefaultPartitioner

from tenure.eventlog.publisher import KeyHashPartitioner


def _cluster(topic: str, partitions: int) -> ClusterMetadata:
    cluster = ClusterMetadata()
    # what a metadata reply fills in: each partition's metadata, here only its leader
    cluster._partitions[topic] = {p: SimpleNamespace(leader_id=0) for p in range(partitions)}
    return cluster


@given(
    keys=st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=30),
    partitions=st.integers(min_value=1, max_value=24),
)
def test_same_partition_as_the_default_for_every_key_first_and_again(
    keys: list[bytes], partitions: int
) -> None:
    cluster = _cluster("t", partitions)
    ours, default = KeyHashPartitioner(), DefaultPartitioner()
    for key in keys + keys:  # the second pass answers from the remembered hashes
        assert ours.partition("t", key, key, b"v", b"v", cluster) == default.partition(
            "t", key, key, b"v", b"v", cluster
        )


def test_a_topic_with_more_partitions_rehashes_the_remembered_key() -> None:
    ours, default = KeyHashPartitioner(), DefaultPartitioner()
    key = b"dev-8842"
    for partitions in (4, 7, 4, 13):
        cluster = _cluster("t", partitions)
        assert ours.partition("t", key, key, None, None, cluster) == default.partition(
            "t", key, key, None, None, cluster
        )


def test_records_without_a_key_go_to_a_partition_of_the_topic() -> None:
    cluster = _cluster("t", 5)
    assert KeyHashPartitioner().partition("t", None, None, b"v", b"v", cluster) in range(5)
