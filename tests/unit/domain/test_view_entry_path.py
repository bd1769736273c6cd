"""Entry paths of the survival comparison, decided at entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tenure.domain.view import entry_path_of

T = datetime(2026, 3, 2, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def test_buyers_are_connected_if_activated_within_the_window() -> None:
    assert entry_path_of(T, T + DAY, T + DAY, T + 2 * DAY) == "connected_buyer"
    assert entry_path_of(T, None, T + 14 * DAY, T + 20 * DAY) == "connected_buyer"
    assert entry_path_of(T, T + 20 * DAY, T + 15 * DAY, T + 30 * DAY) == "one_time_buyer"
    assert entry_path_of(T, None, None, T + 14 * DAY) == "one_time_buyer"


def test_undecided_while_the_window_is_open() -> None:
    assert entry_path_of(T, None, None, T + 13 * DAY) is None


def test_users_who_used_before_paying_stay_non_paying_users() -> None:
    assert entry_path_of(None, T, T, T + DAY) == "non_paying_user"
    assert entry_path_of(T + 30 * DAY, T, T, T + 60 * DAY) == "non_paying_user"
    assert entry_path_of(None, None, None, T) is None
