"""The projector's gauge refresh: every REPORT_EVERY_S while cheap, at most REPORT_SHARE of the
time when its count queries are slow (large queues)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.projector.app import REPORT_EVERY_S, REPORT_SHARE, report_pause


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
def test_a_failed_refresh_is_tried_again_after_the_interval(took: float) -> None:
    """A failure's time (the pool's timeout while the database is away) is not rationed:
    the gauges return within ``REPORT_EVERY_S`` of the database, whatever the wait was."""
    assert report_pause(took, failed=True) == REPORT_EVERY_S
