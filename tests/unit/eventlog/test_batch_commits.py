"""A batch is counted only when its offsets are committed: a batch whose commit fails (the
group moved on) is read and counted again by the partitions' next owner, so counting it in
the worker that wrote it counted its records twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from prometheus_client import REGISTRY

from tenure.eventlog.batch_loop import BatchHandler, BatchLoop, ConsumeSettings


class Record(NamedTuple):
    """The fields of a consumer record the loop reads when committing."""

    offset: int
    value: bytes


class Counting(BatchHandler[list[bytes]]):
    """Counts what the loop reports committed."""

    def __init__(self) -> None:
        self.counted: list[bytes] = []

    def prepare(self, records: Sequence[Any]) -> list[bytes]:
        """The records' values."""
        return [r.value for r in records]

    def write(self, prepared: list[bytes]) -> None:
        """Nothing to make durable here."""

    def committed(self, records: Sequence[Any], prepared: list[bytes]) -> None:
        """Count the batch."""
        self.counted += prepared


class Group:
    """A consumer's offset commits: refused once the group has moved on."""

    def __init__(self, moved_on: bool) -> None:
        self.moved_on = moved_on
        self.offsets: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Record ``offsets``, or refuse them as Kafka does after a rebalance."""
        if self.moved_on:
            raise CommitFailedError("the group has rebalanced")
        self.offsets.append(offsets)


def _delivered_again() -> float:
    value = REGISTRY.get_sample_value(
        "tenure_consumer_batches_delivered_again_total", {"group": "test-commits"}
    )
    return value or 0.0


@pytest.mark.parametrize("moved_on", [False, True])
def test_only_a_committed_batch_is_counted(moved_on: bool) -> None:
    async def commit_one_batch() -> tuple[Counting, Group, BatchLoop[list[bytes]]]:
        handler = Counting()
        loop = BatchLoop(handler, ConsumeSettings("unused:9092", "test-commits", ("t",), "w"))
        group = Group(moved_on)
        loop.consumer = group  # the loop commits through it
        records = [Record(7, b"a"), Record(8, b"b")]
        written = asyncio.create_task(asyncio.sleep(0))  # the batch's write, done
        await loop._commit({TopicPartition("t", 0): records}, records, [b"a", b"b"], written, None)
        return handler, group, loop

    before = _delivered_again()
    handler, group, loop = asyncio.run(commit_one_batch())
    if moved_on:
        assert handler.counted == [] and loop.batches == 0  # the next owner counts them
        assert _delivered_again() == before + 1
    else:
        assert handler.counted == [b"a", b"b"] and loop.batches == 1
        assert group.offsets == [{TopicPartition("t", 0): 9}]
        assert _delivered_again() == before
