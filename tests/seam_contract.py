"""The storage seam's contract: one test suite every backend passes (the eventsourcing pattern).

A backend's test module subclasses :class:`SeamContract` and provides a ``store`` fixture (a
:class:`~tenure.storage.seam.ProjectionStore` over an empty, migrated store):
``tests/unit/storage/test_seam_memory.py`` (memory) and
``tests/integration/storage/test_seam_postgres.py`` (a real Postgres). The projection stages'
fast unit tests run on the memory backend, so what they prove holds for Postgres as far as
this suite reaches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tenure.domain.device_view import device_view_of
from tenure.domain.events import DomainEvent, parse_event
from tenure.domain.neighbourhood import raw_fold
from tenure.domain.person import PersonState
from tenure.domain.transitions import Transition, transition_id
from tenure.domain.view import person_view_at
from tenure.projection.apply import prepare_batch
from tenure.storage.derive_queue import HEAD_FACTOR
from tenure.storage.raw_states import DEVICES, PERSONS
from tenure.storage.read_models import device_row, stored_person_row
from tenure.storage.seam import PendingTransition, PersonWrite, ProjectionStore
from tests.factories import scenario

END = datetime(2026, 6, 1, tzinfo=UTC)
EVENTS: list[DomainEvent] = [
    parse_event(e) for e in scenario(5, 8, source="urn:test:seam", end=END)
]


def _person_writes(
    as_of: datetime, basis: int, human: str = "p-1", deleted: tuple[str, ...] = ()
) -> list[PersonWrite]:
    view = person_view_at(PersonState(human), as_of)
    return [PersonWrite(human, deleted, (*stored_person_row(view, ["p-2"], None), basis))]


def _device_rows(basis: int) -> list[tuple[Any, ...]]:
    state = next(iter(raw_fold(EVENTS).devices.values()))
    return [(*device_row(device_view_of(state)), basis)]


def _transition(person_id: str, new: str, days: int) -> Transition:
    at = END - timedelta(days=days)
    return Transition(
        transition_id(person_id, "stage", "new", new, at), person_id, "stage", "new", new, at
    )


def _pending(t: Transition, as_of: datetime) -> PendingTransition:
    return PendingTransition(t.id, t.person_id, t.kind, t.old, t.new, t.at, as_of)


class SeamContract:
    """What every backend of the storage seam does. Subclasses provide ``store``."""

    # Raw states -----------------------------------------------------------------------

    def test_raw_states_read_the_join_of_every_batch_before_and_after_compaction(
        self, store: ProjectionStore
    ) -> None:
        half = len(EVENTS) // 2
        for part in (EVENTS[:half], EVENTS[half:], EVENTS[: half // 2]):  # a duplicate too
            batch = prepare_batch(part, {})
            store.raw_states.append(batch.devices)
            store.raw_states.append(batch.persons)
        want = raw_fold(EVENTS)
        devices = store.raw_states.read(DEVICES, sorted(want.devices))
        assert devices.states == want.devices
        assert devices.with_deltas == frozenset(want.devices)
        assert store.raw_states.read_all(PERSONS) == want.person_states

        some = sorted(want.devices)[:3]
        store.raw_states.compact(DEVICES, {d: want.devices[d] for d in some})
        after = store.raw_states.read(DEVICES, sorted(want.devices))
        assert after.states == want.devices
        assert after.with_deltas == frozenset(want.devices) - set(some)

    def test_raw_states_read_only_keys_that_exist(self, store: ProjectionStore) -> None:
        read = store.raw_states.read(DEVICES, ["nobody"])
        assert read.states == {}
        assert read.with_deltas == frozenset()
        store.raw_states.compact(PERSONS, {})
        assert store.raw_states.read_all(PERSONS) == {}

    # Key graph ------------------------------------------------------------------------

    def test_key_graph_components_and_mentions(self, store: ProjectionStore) -> None:
        graph = store.key_graph
        graph.add_links([("a", "b"), ("c", "b"), ("d", "e"), ("a", "a")])
        graph.add_links([("a", "b")])  # again: nothing new
        graph.add_mentions([("a", "dev-1"), ("e", "dev-2"), ("a", "dev-1")])
        ids, identity = graph.components(["a"])
        assert ids == {"a", "b", "c"}
        assert identity.canonical_ids() == {"a": "a", "b": "a", "c": "a"}
        assert graph.components(["z"])[0] == {"z"}
        assert graph.components([])[0] == frozenset()
        assert graph.devices_mentioning(["a", "b"]) == {"dev-1"}
        assert graph.persons_mentioned_by(["dev-1", "dev-2"]) == {"a", "e"}
        assert graph.persons_mentioned_by([]) == frozenset()

    # Derive queue ---------------------------------------------------------------------

    def test_queue_claims_oldest_first_every_mark_once(self, store: ProjectionStore) -> None:
        queue = store.queue
        queue.enqueue("person", ["b", "a", "b"])
        queue.enqueue("person", ["c", "a"])
        queue.enqueue("device", ["d"])
        assert queue.oldest("person", 10) == ["a", "b", "c"]
        assert queue.claim("person", 2) == ["a", "b"]
        assert queue.oldest("person", 10) == ["c"]
        assert queue.claim_keys("person", ["c", "z"]) == ["c"]
        assert queue.claim("person", 10) == []
        assert queue.claim("device", 10) == ["d"]

    def test_a_claim_takes_its_limit_however_many_marks_one_key_has(
        self, store: ProjectionStore
    ) -> None:
        """One key queued by many batches fills the first claim's head (``HEAD_FACTOR``
        times its limit) with its marks; the claim still reaches the keys behind it."""
        queue = store.queue
        for _ in range(3 * HEAD_FACTOR):
            queue.enqueue("person", ["hot"])
        queue.enqueue("person", ["b", "c"])
        assert queue.oldest("person", 2) == ["hot", "b"]
        assert queue.claim("person", 2) == ["b", "hot"]
        assert queue.claim("person", 2) == ["c"]

    def test_a_key_given_back_keeps_its_place_in_the_queue(self, store: ProjectionStore) -> None:
        queue = store.queue
        queue.enqueue("person", ["a", "b", "c"])
        assert queue.claim("person", 2) == ["a", "b"]
        queue.enqueue("person", ["d"])
        queue.give_back("person", ["b", "z"])  # b was claimed: its place; z was not: the back
        assert queue.oldest("person", 10) == ["b", "c", "d", "z"]
        assert queue.claim("person", 1) == ["b"]

    def test_a_claimed_key_tells_how_long_it_has_waited(self, store: ProjectionStore) -> None:
        queue = store.queue
        queue.enqueue("person", ["a"])
        time.sleep(0.3)
        queue.enqueue("person", ["b"])
        assert queue.claim("person", 1) == ["a"]
        queue.give_back("person", ["a"])  # given back: still queued since its first mark
        assert queue.claim("person", 2) == ["a", "b"]
        time.sleep(0.1)
        a, b = queue.waited("person", ["a", "b"])
        assert 0.4 <= a < 30 and 0.1 <= b < a - 0.25  # a was queued 0.3 s before b
        assert queue.waited("person", ["z"]) == []  # not claimed
        assert queue.waited("device", ["a"]) == []

    def test_queue_touched_reaches_the_persons_a_device_mentions(
        self, store: ProjectionStore
    ) -> None:
        store.key_graph.add_mentions([("m", "dev-1"), ("n", "dev-2")])
        assert store.queue.queue_touched(["p", "p"], ["dev-1"]) == 1
        assert store.queue.claim("person", 10) == ["m", "p"]

    # Progress (watermark) -------------------------------------------------------------

    def test_watermark_is_the_latest_event_time_less_the_lateness(
        self, store: ProjectionStore
    ) -> None:
        lateness = timedelta(hours=1)
        assert store.progress.watermark(lateness) is None
        store.progress.record({("t", 0): END}, {("t", 0): 10})
        store.progress.record({("t", 0): END - timedelta(days=1), ("t", 1): END}, {})
        store.progress.record({}, {("t", 0): 5, ("t", 9): 3})  # only offsets: no new partition
        assert store.progress.watermark(lateness) == END - lateness
        store.progress.record({("u", 0): END + timedelta(days=2)}, {})
        assert store.progress.watermark(lateness) == END + timedelta(days=2) - lateness

    # Read models ----------------------------------------------------------------------

    def test_person_rows_move_only_forward(self, store: ProjectionStore) -> None:
        models = store.read_models
        assert models.write_persons(_person_writes(END, basis=5)) == (set(), set())
        assert models.write_persons(_person_writes(END, basis=4)).stale == {"p-1"}  # less known
        before = END - timedelta(days=1)
        assert models.write_persons(_person_writes(before, basis=9)).stale == {"p-1"}  # older
        assert models.write_persons(_person_writes(END, basis=5)) == (set(), set())  # same: moves
        views = models.current_views(["p-1", "p-9"], END)
        assert set(views) == {"p-1"}
        expected = person_view_at(PersonState("p-1"), END)
        got = views["p-1"]
        assert (got.segment, got.stage, got.level, got.tier, got.is_super_user) == (
            expected.segment, expected.stage, expected.level, expected.tier, expected.is_super_user
        )  # fmt: skip
        # p-1 became an alias of p-3: its row goes, p-3's comes, in one write.
        assert models.write_persons(_person_writes(END, 1, "p-3", ("p-1",))) == (set(), set())
        assert set(models.current_views(["p-1", "p-3"], END)) == {"p-3"}
        # erased: its row goes, none comes
        assert models.write_persons([PersonWrite("p-3", ("p-3",), None)]) == (set(), set())
        assert models.current_views(["p-1", "p-3"], END) == {}
        assert models.write_persons([]) == (set(), set())

    def test_device_rows_move_only_forward(self, store: ProjectionStore) -> None:
        models = store.read_models
        assert models.upsert_devices(_device_rows(basis=2)) == set()
        key = str(_device_rows(0)[0][0])
        assert models.upsert_devices(_device_rows(basis=1)) == {key}
        assert models.upsert_devices(_device_rows(basis=3)) == set()
        assert models.upsert_devices([]) == set()

    # Transitions outbox ----------------------------------------------------------------

    @pytest.fixture
    def commit(self, store: ProjectionStore) -> Callable[[], None]:
        """Make the store's writes so far final, as a committed transaction's are (memory:
        nothing to do). A backend whose writes are final only once committed overrides it."""
        return lambda: None

    def test_outbox_hands_out_transitions_after_the_relay_in_the_order_added(
        self, store: ProjectionStore, commit: Callable[[], None]
    ) -> None:
        outbox = store.outbox
        t1, t2, t3, t4 = (_transition(f"p-{n}", "active", n) for n in range(1, 5))
        earlier, later = END - timedelta(hours=2), END
        start = outbox.claim_relay()
        assert start is not None
        assert outbox.after(start, 10) == ([], start)
        outbox.add([t1, t2, t3], earlier)
        outbox.add([t2, t4], later)  # t2 again: kept where and as it was
        outbox.add([], later)
        commit()
        everything = [_pending(t, earlier) for t in (t1, t2, t3)] + [_pending(t4, later)]
        start = outbox.claim_relay()
        assert start is not None
        assert outbox.after(start, 10)[0] == everything
        first_two, middle = outbox.after(start, 2)
        assert first_two == everything[:2]
        assert outbox.after(middle, 10)[0] == everything[2:]
        outbox.move_relay(middle)
        assert outbox.claim_relay() == middle

        outbox.add([t1], later)  # published already: not handed out again
        commit()
        rest, end = outbox.after(middle, 10)
        assert rest == everything[2:]
        assert outbox.after(end, 10) == ([], end)
        outbox.move_relay(end)
        assert outbox.claim_relay() == end

    # Churn queue ----------------------------------------------------------------------

    def test_churn_queue_keeps_the_last_days_queued_per_person(
        self, store: ProjectionStore
    ) -> None:
        churn = store.churn
        d1, d2, d3 = date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 9)
        assert churn.pending() == {}
        assert churn.queue_people([("a", [d2, d1, d2], "all"), ("b", [d3], "trial")]) == 2
        assert churn.queue_people([("a", [d3], "all"), ("a", None, "all")]) == 1  # last wins
        assert churn.queue_people([]) == 0
        assert churn.pending() == {"a": ("all", None), "b": ("trial", [d3])}
        churn.queue_people([("a", [d3, d1], "paid")])
        assert churn.pending() == {"a": ("paid", [d1, d3]), "b": ("trial", [d3])}
