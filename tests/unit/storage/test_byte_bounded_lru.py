"""The byte-bounded LRU map the projector's caches keep: same contents, order, bytes and
evictions as a plain list model, after any sequence of steps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenure.storage.byte_bounded_lru import ByteBoundedLru

KEYS = st.sampled_from([f"k{i}" for i in range(12)])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS, st.integers(0, 40)),
        st.tuples(st.just("touch"), KEYS, st.just(0)),
        st.tuples(st.just("discard"), KEYS, st.just(0)),
    ),
    max_size=200,
)


class _ListModel:
    """The obvious O(n) reference: (key, value, size) least recently used first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: list[tuple[str, int, int]] = []
        self.evicted = 0

    def _without(self, key: str) -> list[tuple[str, int, int]]:
        return [e for e in self.entries if e[0] != key]

    def add(self, key: str, value: int, size: int) -> None:
        self.entries = [*self._without(key), (key, value, size)]
        while sum(e[2] for e in self.entries) > self.limit and self.entries:
            self.entries.pop(0)
            self.evicted += 1

    def touch(self, key: str) -> None:
        held = [e for e in self.entries if e[0] == key]
        self.entries = self._without(key) + held

    def discard(self, key: str) -> None:
        self.entries = self._without(key)


@given(limit=st.integers(0, 120), steps=STEPS)
def test_it_behaves_as_the_list_model(limit: int, steps: list[tuple[str, str, int]]) -> None:
    lru: ByteBoundedLru[int] = ByteBoundedLru(limit)
    model = _ListModel(limit)
    for n, (step, key, size) in enumerate(steps):
        if step == "add":
            lru.add(key, n, size)
            model.add(key, n, size)
        elif key in lru.values:  # touch is for held keys only, as the caches use it
            getattr(lru, step)(key)
            getattr(model, step)(key)
        else:
            assert key not in [e[0] for e in model.entries]
            lru.discard(key)
        assert list(lru.values.items()) == [(k, v) for k, v, _ in model.entries]
        assert lru.used_bytes == sum(e[2] for e in model.entries) <= limit
        assert lru.evicted == model.evicted


def test_an_entry_larger_than_the_bound_is_not_kept() -> None:
    lru: ByteBoundedLru[str] = ByteBoundedLru(10)
    lru.add("small", "s", 4)
    lru.add("huge", "h", 11)
    assert dict(lru.values) == {} and lru.used_bytes == 0 and lru.evicted == 2


def test_clear_forgets_everything_but_the_eviction_count() -> None:
    lru: ByteBoundedLru[str] = ByteBoundedLru(10)
    for key in "abcd":
        lru.add(key, key, 4)
    lru.clear()
    assert dict(lru.values) == {} and lru.used_bytes == 0 and lru.evicted == 2
