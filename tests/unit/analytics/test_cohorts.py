"""Cohort retention aggregates equal a brute-force computation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.analytics import CohortRetention, cohort_week_start, week_index

MONDAYS = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(4)]

person = st.tuples(st.sampled_from(MONDAYS), st.frozensets(st.integers(0, 12), max_size=8))


def brute_force(people, cohort, weeks):
    members = [w for c, w in people if c == cohort]
    on = tuple(sum(1 for w in members if k in w) for k in range(weeks))
    after = tuple(sum(1 for w in members if any(x >= k for x in w)) for k in range(weeks))
    return len(members), on, after


@settings(max_examples=100, deadline=None)
@given(st.lists(person, max_size=60), st.lists(st.integers(0, 59), max_size=20), st.data())
def test_matches_brute_force_with_add_remove(people, to_change, data):
    people = list(people)
    agg = CohortRetention()
    for cohort, weeks in people:
        agg.add(cohort, weeks)
    for i in to_change:  # one person's active weeks grow, or they are forgotten
        if i >= len(people) or people[i][0] is None:
            continue
        cohort, weeks = people[i]
        if data.draw(st.booleans()):
            new = weeks | {data.draw(st.integers(0, 12))}
            agg.replace(cohort, weeks, new)
            people[i] = (cohort, new)
        else:
            agg.remove(cohort, weeks)
            people[i] = (None, frozenset())
    people = [p for p in people if p[0] is not None]
    assert agg.cohorts() == sorted({c for c, _ in people})
    for row in agg.matrix():
        size, on, after = brute_force(people, row.cohort_start, len(row.on))
        assert (row.size, row.on, row.on_or_after) == (size, on, after)
        assert row.on_share == tuple(x / size for x in on)
        for k in range(15):
            _, on_k, after_k = brute_force(people, row.cohort_start, k + 1)
            assert agg.on(row.cohort_start, k) == on_k[k]
            assert agg.on_or_after(row.cohort_start, k) == after_k[k]


def test_matrix_truncates_at_as_of_and_shares():
    agg = CohortRetention()
    c0, c1 = MONDAYS[0], MONDAYS[2]
    agg.add(c0, {0, 1, 4})
    agg.add(c0, {0})
    agg.add(c0, set())
    agg.add(c1, {0, 1})
    rows = agg.matrix(as_of=c1 + timedelta(days=8))  # c1 has weeks 0 and 1 started
    assert [len(r.on) for r in rows] == [4, 2]
    r0 = rows[0]
    assert r0.size == 3 and r0.on == (2, 1, 0, 0) and r0.on_or_after == (2, 1, 1, 1)
    assert r0.on_or_after_share == (2 / 3, 1 / 3, 1 / 3, 1 / 3)
    assert rows[1].on == (1, 1) and rows[1].on_or_after == (1, 1)
    assert agg.row(date(2020, 1, 6)).size == 0


def test_remove_never_negative():
    agg = CohortRetention()
    agg.add(MONDAYS[0], {0, 2})
    with pytest.raises(ValueError):
        agg.remove(MONDAYS[0], {0, 1})
    with pytest.raises(ValueError):
        agg.remove(MONDAYS[1], {0})
    with pytest.raises(ValueError):
        agg.add(MONDAYS[0], {-1})
    assert agg.row(MONDAYS[0]).on == (1, 0, 1)
    agg.remove(MONDAYS[0], {0, 2})
    assert agg.cohorts() == []


def test_week_helpers():
    assert cohort_week_start(date(2026, 1, 8)) == date(2026, 1, 5)  # Thursday -> Monday
    assert week_index(date(2026, 1, 5), date(2026, 1, 11)) == 0
    assert week_index(date(2026, 1, 5), date(2026, 1, 12)) == 1
    with pytest.raises(ValueError):
        week_index(date(2026, 1, 5), date(2026, 1, 4))
