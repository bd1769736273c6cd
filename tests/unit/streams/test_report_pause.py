"""The projector's gauge refresh: every REPORT_EVERY_S while cheap, at most REPORT_SHARE of the
time when its count queries are slow (large queues)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.errors import QueryCanceled
from psycopg_pool import PoolTimeout

from streams.projector.app import REPORT_EVERY_S, REPORT_SHARE, refresh_once, report_pause


def test_cheap_refreshes_start_every_interval() -> None:
    assert report_pause(0.05) == pytest.approx(REPORT_EVERY_S - 0.05)


def test_a_two_second_refresh_waits_eighteen() -> None:
    assert report_pause(2.0) == pytest.approx(18.0)


@given(st.floats(min_value=0.0, max_value=600.0))
def test_refreshes_never_take_more_than_their_share(took: float) -> None:
    pause = report_pause(took)
    assert pause >= 0.0
    assert took + pause >= REPORT_EVERY_S - 1e-9
    if took > 0:
        assert took / (took + pause) <= REPORT_SHARE + 1e-9


@given(st.floats(min_value=0.0, max_value=600.0))
def test_a_refresh_that_found_no_connection_is_tried_again_after_the_interval(
    took: float,
) -> None:
    """A wait for a connection (the pool's timeout while the database is away) ran no
    query, so it is not rationed: the gauges return within ``REPORT_EVERY_S`` of the
    database, whatever the wait was."""
    assert report_pause(took, no_connection=True) == REPORT_EVERY_S


def _failing_after(seconds: float, error: Exception) -> Callable[[], None]:
    def refresh() -> None:
        time.sleep(seconds)
        raise error

    return refresh


def test_a_refresh_that_waited_for_the_pool_in_vain_is_retried_after_the_interval() -> None:
    pause = refresh_once(_failing_after(0.3, PoolTimeout("no connection in 0.3 s")), "a gauge")
    assert pause == REPORT_EVERY_S


def test_a_query_that_failed_after_running_is_rationed_as_work() -> None:
    """A statement cancelled after 0.3 s (a timeout) was 0.3 s of Postgres: the next
    refresh waits nine times that, as after a success."""
    pause = refresh_once(_failing_after(0.3, QueryCanceled("statement timeout")), "a gauge")
    assert pause >= 0.3 / REPORT_SHARE - 0.3
    assert pause > REPORT_EVERY_S
