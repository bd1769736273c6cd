"""``state_cache``: the projector's raw-state cache when it is full, against the cache it
replaced.

When the cache is at its byte bound (the normal case from a few thousand devices on, at the
default ``TENURE_PROJECTOR_CACHE_MB``), every state the derive stage reads or compacts and
every delta the apply stage writes is an insertion that evicts the least recently used
entry. The cache of :data:`OLD_COMMIT` found that entry with ``next(iter(dict))``, which
scans past every slot deleted since the dict was last resized: its cost grew with the
entries held. Today's (:class:`tenure.storage.byte_bounded_lru.ByteBoundedLru`) pops it
from an ``OrderedDict``.

For each size in :data:`SIZES` both caches are filled to that many entries of equal size,
then ``repeats`` times :data:`PUTS` more states are put one at a time (``StateCache.put``,
the derive stage's call), evicting one each; a cache's time per put is its minimum over the
repeats. ``ratio``: today's time per put / the old cache's, at the largest size (below 1:
faster). No servers are needed.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from bench.old_code import module_at
from bench.result import Result
from tenure.storage import state_cache

NAME = "state_cache"
SIZES: tuple[int, ...] = (1_000, 10_000, 100_000)
"""Entries held when the timed puts start (a full cache)."""
DEFAULT_REPEATS = 5
PUTS = 20_000
"""States put (each evicting one) per timed repeat."""
DOCUMENT_CHARS = 1_000
"""Characters of each state's document (sets the entry's estimated bytes)."""
OLD_COMMIT = "60d8b97"
"""The last commit whose cache evicted with ``next(iter(dict))``."""


def _full(cache_type: Any, size: int) -> Any:
    """A cache of ``cache_type`` holding exactly ``size`` states, at its bound."""
    per_entry = state_cache.entry_bytes(
        "k0000000", DOCUMENT_CHARS, state_cache.DEVICE_BYTES_PER_CHAR
    )
    limit = int(size * per_entry / state_cache.STATES_SHARE) + 1
    cache = cache_type(limit)
    _put(cache, 0, size)
    assert len(cache.entries) == size, (len(cache.entries), size)
    return cache


def _put(cache: Any, start: int, count: int) -> float:
    """Put states ``start .. start + count`` one per call; return the seconds taken."""
    chars = {f"k{n:07d}": DOCUMENT_CHARS for n in range(start, start + count)}
    began = time.perf_counter()
    for key, length in chars.items():
        cache.put({key: 1}, {key: None}, {key: length})
    return time.perf_counter() - began


def _per_put_us(cache_type: Any, size: int, repeats: int) -> float:
    cache = _full(cache_type, size)
    best = float("inf")
    gc.disable()
    try:
        for r in range(repeats):
            best = min(best, _put(cache, size + r * PUTS, PUTS))
    finally:
        gc.enable()
    assert len(cache.entries) == size
    return round(best / PUTS * 1e6, 3)


def run(repeats: int = DEFAULT_REPEATS, sizes: tuple[int, ...] = SIZES) -> Result:
    """Time a put into a full cache, today's and the old one's, at each size."""
    old = module_at(OLD_COMMIT, "tenure/storage/state_cache.py", "tenure_old_state_cache")
    today = {str(n): _per_put_us(state_cache.StateCache, n, repeats) for n in sizes}
    before = {str(n): _per_put_us(old.StateCache, n, repeats) for n in sizes}
    largest = str(max(sizes))
    return Result(
        name=NAME,
        params={
            "sizes": list(sizes),
            "puts": PUTS,
            "repeats": repeats,
            "document_chars": DOCUMENT_CHARS,
            "old_commit": OLD_COMMIT,
        },
        measured={"us_per_put_by_entries_held": today},
        baseline={
            "what": f"the cache of {OLD_COMMIT} (dict, next(iter()) eviction)",
            "us_per_put_by_entries_held": before,
        },
        ratio=today[largest] / before[largest] if before[largest] else 0.0,
        ratio_meaning=f"today's microseconds per put / the old cache's, {largest} entries held"
        " (below 1: faster)",
    )
