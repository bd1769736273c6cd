"""Replay's chunked, ranged fold equals the pure fold of every event at once."""

from __future__ import annotations

import random
from functools import cache
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain.events import DomainEvent, parse_event
from tenure.domain.neighbourhood import raw_fold
from tenure.projection.replay_fold import FoldedRange, fold_chunk, join_ranges
from tenure.simulation import SimulationParameters, simulate


@cache
def _events() -> tuple[DomainEvent, ...]:
    deliveries = simulate(SimulationParameters(people=25, identity_link_rate=0.3)).deliveries
    return tuple(parse_event(d.envelope) for d in deliveries)


@settings(max_examples=10, deadline=None)
@given(
    cuts=st.lists(st.floats(0, 1), max_size=3),
    chunk=st.integers(1, 400),
    seed=st.integers(0, 10),
)
def test_ranges_folded_in_chunks_and_joined_equal_the_fold(
    cuts: list[float], chunk: int, seed: int
) -> None:
    events = list(_events())
    random.Random(seed).shuffle(events)
    points = sorted({0, len(events), *(int(c * len(events)) for c in cuts)})
    parts = []
    for start, end in pairwise(points):
        folded = FoldedRange()
        for at in range(start, end, chunk):
            fold_chunk(folded, events[at : min(at + chunk, end)])
        parts.append(folded)
    raw, totals = join_ranges(parts)
    want = raw_fold(events)
    assert dict(raw.devices) == dict(want.devices)
    assert dict(raw.person_states) == dict(want.person_states)
    assert raw.identity == want.identity
    assert totals.events == len(events) and totals.latest == max(e.at for e in events)
    assert want.identity.links  # the population links identities
