"""The engagement days of a person as of an instant: a day's span counts up to that instant."""

from __future__ import annotations

from .scenario import activated, at, used
from .views import view_of


def test_a_day_still_going_on_at_as_of_counts_up_to_its_last_use_before_it() -> None:
    events = [
        activated("d1", "p1", 0, hour=8),
        used("d1", 0, "p1", hour=10),
        used("d1", 0, "p1", hour=14),  # after as_of (noon): not yet
    ]
    view = view_of(events, "p1", 0)
    assert view.last_engagement_at == at(0, 8)  # the day's span, 8:00-14:00, clamped to its start
    assert view.first_engagement_at == at(0, 8)
    assert view.active_days == 1
    assert view_of(events, "p1", 0.5).last_engagement_at == at(0, 14)  # by midnight: all of it
    later = [*events, used("d1", 1, "p1", hour=9)]  # a day after as_of: not at all
    assert view_of(later, "p1", 0).last_engagement_at == at(0, 8)
    assert view_of(later, "p1", 0).active_days == 1
