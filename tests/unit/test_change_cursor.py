"""The change cursor of ``/v1/persons?updated_since=`` round-trips and refuses garbage."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.storage.person_changes import START, ChangeCursor, InvalidCursor


@given(st.integers(0, (1 << 64) - 1), st.text().filter(lambda t: "\x00" not in t))
def test_a_cursor_round_trips(xid: int, person_id: str) -> None:
    cursor = ChangeCursor(xid, person_id)
    assert ChangeCursor.decode(cursor.encode()) == cursor


def test_zero_is_the_start_and_cursors_order_by_xid_then_id() -> None:
    assert ChangeCursor.decode("0") == START
    assert START < ChangeCursor(1, "") < ChangeCursor(1, "a") < ChangeCursor(2, "")


@pytest.mark.parametrize("raw", ["-1:a", f"{1 << 64}:a", "x:a", "5:a\x00b"])
def test_garbage_is_refused(raw: str) -> None:
    with pytest.raises(InvalidCursor):
        ChangeCursor.decode(base64.urlsafe_b64encode(raw.encode()).decode())
    with pytest.raises(InvalidCursor):
        ChangeCursor.decode("!!")
