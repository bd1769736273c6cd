"""The contribution delta logic behind the live survival aggregates."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.analytics.survival_contribution import (
    Contribution,
    apply_delta,
    cells,
    contribution_of,
    delta,
    group_keys,
    total,
)
from tenure.analytics.survival_report import SelectorError, parse_groups

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

moments = st.one_of(
    st.none(), st.integers(0, 200).map(lambda d: T0 + timedelta(days=d, hours=d % 7))
)


@st.composite
def person_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A persons row with the columns contributions read (consistent enough, not exact)."""
    first = draw(moments)
    last = None if first is None else first + timedelta(days=draw(st.integers(0, 120)))
    paid = draw(moments)
    second = None if paid is None else draw(st.one_of(st.none(), st.just(paid + timedelta(3))))
    use = draw(moments)
    cohort = None if first is None else first.date() - timedelta(days=first.weekday())
    weeks = draw(st.lists(st.integers(0, 20), max_size=6)) if first is not None else []
    return {
        "segment": draw(st.sampled_from(["customer_and_user", "customer_only", "user_only"])),
        "stage": draw(st.sampled_from(["new", "active", "at_risk", "churned"])),
        "level": draw(st.sampled_from(["micro", "weak"])),
        "tier": draw(st.sampled_from(["none", "bronze"])),
        "entry_path": draw(
            st.sampled_from([None, "connected_buyer", "one_time_buyer", "non_paying_user"])
        ),
        "products": draw(st.lists(st.sampled_from(["watch", "band"]), unique=True)),
        "first_engagement_at": first,
        "last_engagement_at": last,
        "tenure_days": 0 if first is None or last is None else (last.date() - first.date()).days,
        "cohort_week": cohort,
        "engaged_weeks": sorted({0, *weeks}) if first is not None else [],
        "first_paid_order_at": paid,
        "second_paid_order_at": second,
        "first_use_at": use,
        "device_activation_at": draw(moments),
    }


@given(st.lists(person_rows(), max_size=8), person_rows())
def test_adding_then_removing_changes_nothing(others: list[dict], row: dict) -> None:
    counts = total(contribution_of(r) for r in others)
    before = dict(counts)
    c = contribution_of(row)
    apply_delta(counts, delta(None, c))
    assert sum(counts.values()) == sum(before.values()) + len(cells(c))
    apply_delta(counts, delta(c, None))
    assert counts == before


@settings(max_examples=60)
@given(
    st.lists(st.lists(person_rows(), min_size=1, max_size=4), min_size=1, max_size=6), st.randoms()
)
def test_any_interleaving_of_changes_ends_at_the_totals_of_the_final_rows(
    histories: list[list[dict]], rnd: random.Random
) -> None:
    """Each person moves through a sequence of rows; persons' moves interleave at random."""
    steps = [(p, i) for p, history in enumerate(histories) for i in range(len(history))]
    rnd.shuffle(steps)  # persons interleave at random; each person's rows apply in order
    position = [-1] * len(histories)
    counts: dict = {}
    for p, _ in steps:
        old = None if position[p] < 0 else contribution_of(histories[p][position[p]])
        position[p] += 1
        apply_delta(counts, delta(old, contribution_of(histories[p][position[p]])))
    assert counts == total(contribution_of(h[-1]) for h in histories)
    assert all(n > 0 for n in counts.values())


@given(person_rows(), person_rows())
def test_delta_is_the_difference_of_cell_counts(a: dict, b: dict) -> None:
    ca, cb = contribution_of(a), contribution_of(b)
    counts = total([ca])
    apply_delta(counts, delta(ca, cb))
    assert counts == total([cb])
    assert delta(ca, ca) == {}


def _naive_delta(old: Contribution | None, new: Contribution | None) -> dict[Any, int]:
    change: Counter[Any] = Counter(cells(new) if new is not None else [])
    change.subtract(Counter(cells(old) if old is not None else []))
    return {cell: n for cell, n in change.items() if n}


@given(person_rows(), st.integers(0, 30), st.lists(st.integers(0, 30), max_size=3), st.booleans())
def test_delta_of_a_later_row_of_the_same_person_is_the_multiset_difference(
    a: dict, days: int, weeks: list[int], churned: bool
) -> None:
    """The usual change (engagement moved on, maybe a new week or stage) in the same
    groups: ``delta`` (which only looks at what changed) equals the difference of cells."""
    b = dict(a)
    if a["last_engagement_at"] is not None:
        b["last_engagement_at"] = a["last_engagement_at"] + timedelta(days=days)
        b["tenure_days"] = a["tenure_days"] + days
        b["engaged_weeks"] = sorted({*a["engaged_weeks"], *weeks})
    if churned:
        b["stage"] = "churned"
    ca, cb = contribution_of(a), contribution_of(b)
    for old, new in ((ca, cb), (cb, ca), (None, cb), (ca, None), (ca, ca)):
        assert delta(old, new) == _naive_delta(old, new)


@given(person_rows(), person_rows())
def test_delta_of_any_two_rows_is_the_multiset_difference(a: dict, b: dict) -> None:
    ca, cb = contribution_of(a), contribution_of(b)
    assert delta(ca, cb) == _naive_delta(ca, cb)
    doubled = Contribution(groups=(*ca.groups, ca.groups[0]), tenure_days=ca.tenure_days,
                           last_day=ca.last_day, churned=ca.churned, cohort_week=ca.cohort_week,
                           engaged_weeks=(*ca.engaged_weeks, *ca.engaged_weeks[:1]))  # fmt: skip
    assert delta(doubled, cb) == _naive_delta(doubled, cb)
    assert delta(cb, doubled) == _naive_delta(cb, doubled)


def test_groups_and_cells_of_a_connected_buyer() -> None:
    row = {
        "segment": "customer_and_user", "stage": "churned", "level": "weak", "tier": "bronze",
        "entry_path": "connected_buyer", "products": ["watch"],
        "first_engagement_at": T0, "last_engagement_at": T0 + timedelta(days=40),
        "tenure_days": 40, "cohort_week": date(2026, 1, 5), "engaged_weeks": [0, 2, 5],
        "first_paid_order_at": T0, "second_paid_order_at": T0 + timedelta(days=10),
        "first_use_at": T0 + timedelta(days=1), "device_activation_at": T0 + timedelta(days=1),
    }  # fmt: skip
    assert group_keys(row) == (
        "all", "cohort:2026-01-05", "entry:connected_buyer", "level:weak",
        "product:watch", "segment:customer_and_user", "stage:churned", "tier:bronze",
    )  # fmt: skip
    mine = cells(contribution_of(row))
    assert ("survival_tenure_closed", ("all", 40)) in mine
    assert ("milestone_events", ("activation", "all", 1)) in mine
    assert ("milestone_events", ("repeat", "all", 10)) in mine
    assert not any(c[1][:2] == ("conversion", "all") for c in mine)  # a buyer, not a user
    assert ("retention_last", ("all", date(2026, 1, 5), 5)) in mine
    assert not any(t.startswith("retention") and k[0].startswith("cohort:") for t, k in mine)
    open_row = {**row, "stage": "active"}
    assert ("survival_tenure_open", ("all", 40, date(2026, 2, 14))) in cells(
        contribution_of(open_row)
    )


def test_group_selectors() -> None:
    assert parse_groups(None) == ["all"]
    assert parse_groups("entry:connected_buyer, tier:gold") == [
        "entry:connected_buyer",
        "tier:gold",
    ]
    assert parse_groups("cohort:2026-03-02,product:anything") == [
        "cohort:2026-03-02",
        "product:anything",
    ]
    for bad in ("colour:red", "entry:gift", "cohort:2026-03-03", "cohort:soon", "stage:", "x"):
        try:
            parse_groups(bad)
        except SelectorError as exc:
            assert bad.split(":")[0] in str(exc) or "value" in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
