"""The transitions outbox relay on the memory backend of the storage seam (no I/O).

However transitions are added (repeats included), whatever the relay's step size and
whichever publishes fail, every transition added is published exactly once, in the order it
was first added; a record the broker refuses on its own is dead-lettered and does not block
the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.errors import MessageSizeTooLargeError

from tenure.contract.topics import LIFECYCLE_TRANSITIONS
from tenure.domain.transitions import Transition, transition_id
from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink
from tenure.eventlog.publisher import OutgoingRecord, PublishFailed
from tenure.projection.outbox import Relayed, relay_pending
from tenure.storage.memory_store import MemoryTables, memory_store
from tenure.storage.transitions_outbox import RelayPosition

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
KINDS = ("stage", "segment", "level")


def _transition(n: int) -> Transition:
    at = AS_OF - timedelta(minutes=n)
    kind = KINDS[n % len(KINDS)]
    return Transition(transition_id(f"p-{n}", kind, "a", "b", at), f"p-{n}", kind, "a", "b", at)


class Topic:
    """The records a broker acknowledged, in order. Publish call number ``i`` fails as a
    broker that did not answer when ``i`` is in ``unanswered``; a batch holding a transition
    of ``too_large`` fails as the broker's size limit does. A failed call keeps nothing."""

    def __init__(
        self, unanswered: frozenset[int] = frozenset(), too_large: frozenset[str] = frozenset()
    ) -> None:
        self.unanswered = unanswered
        self.too_large = too_large
        self.calls = 0
        self.records: list[OutgoingRecord] = []

    def publish(self, records: Sequence[OutgoingRecord]) -> None:
        self.calls += 1
        if self.calls in self.unanswered:
            raise PublishFailed("the broker did not acknowledge")
        if any(self.transition_id(r) in self.too_large for r in records):
            raise PublishFailed("refused") from MessageSizeTooLargeError()
        self.records += records

    @staticmethod
    def transition_id(record: OutgoingRecord) -> str:
        return str(orjson.loads(record.value)["id"])

    def ids(self) -> list[str]:
        return [self.transition_id(r) for r in self.records]


def _relay_until_empty(tables: MemoryTables, topic: Topic, limit: int) -> tuple[Relayed, int]:
    """Relay steps until one takes nothing; a step whose publish failed is retried (as the
    worker's publish task does). Returns what the steps took, summed, and the failures."""
    outbox = memory_store(tables).outbox
    sink = DeadLetterSink("outbox")
    stored: list[DeadLetter] = []
    taken, kinds, failures = 0, Counter[str](), 0
    while True:
        try:
            step = relay_pending(outbox, topic.publish, sink, stored.extend, limit=limit)
        except PublishFailed:
            failures += 1
            continue
        if step.taken == 0:
            return Relayed(taken, stored, kinds), failures
        taken += step.taken
        kinds += step.kinds


@settings(max_examples=60, deadline=None)
@given(
    adds=st.lists(st.lists(st.integers(0, 30), max_size=8), min_size=1, max_size=6),
    limit=st.integers(1, 7),
    unanswered=st.frozensets(st.integers(1, 40), max_size=10),
)
def test_every_transition_is_published_once_in_order_across_failed_publishes(
    adds: list[list[int]], limit: int, unanswered: frozenset[int]
) -> None:
    tables = MemoryTables()
    outbox = memory_store(tables).outbox
    topic = Topic(unanswered)
    expected: list[str] = []
    relayed = 0
    for numbers in adds:  # adds and relaying interleaved, as derive and the relay run
        found = [_transition(n) for n in numbers]
        outbox.add(found, AS_OF)
        for t in found:
            if t.id not in expected:
                expected.append(t.id)
        step, _ = _relay_until_empty(tables, topic, limit)
        relayed += step.taken

    assert topic.ids() == expected  # each once, in the order first added
    assert relayed == len(expected)
    assert tables.relayed == len(expected)
    assert outbox.after(RelayPosition(0, tables.relayed), 1000)[0] == []


def test_a_failed_publish_marks_nothing_and_the_next_step_publishes_the_same() -> None:
    tables = MemoryTables()
    outbox = memory_store(tables).outbox
    found = [_transition(n) for n in range(5)]
    outbox.add(found, AS_OF)
    topic = Topic(unanswered=frozenset({1}))
    sink = DeadLetterSink("outbox")
    with pytest.raises(PublishFailed):
        relay_pending(outbox, topic.publish, sink, list[DeadLetter]().extend, limit=3)
    assert topic.records == [] and tables.relayed == 0

    step = relay_pending(outbox, topic.publish, sink, list[DeadLetter]().extend, limit=3)
    assert step.taken == 3 and step.letters == []
    assert topic.ids() == [t.id for t in found[:3]]
    assert step.kinds == Counter(t.kind for t in found[:3])
    published = orjson.loads(topic.records[0].value)
    assert published["subject"] == found[0].person_id
    assert published["data"]["as_of"].startswith("2026-06-01T00:00:00")


def test_a_record_the_broker_refuses_is_dead_lettered_and_blocks_nothing() -> None:
    tables = MemoryTables()
    found = [_transition(n) for n in range(6)]
    memory_store(tables).outbox.add(found, AS_OF)
    topic = Topic(too_large=frozenset({found[2].id}))

    relayed, failures = _relay_until_empty(tables, topic, limit=4)

    assert failures == 0
    assert topic.ids() == [t.id for t in found if t is not found[2]]
    assert [letter.category for letter in relayed.letters] == ["too_large"]
    assert relayed.letters[0].origin.startswith(f"outbox/{LIFECYCLE_TRANSITIONS}/")
    assert relayed.taken == 6 and sum(relayed.kinds.values()) == 5
    assert tables.relayed == len(found)
