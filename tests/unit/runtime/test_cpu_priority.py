"""Reading a session's autogroup nice from the kernel's text."""

import pytest

from tenure.runtime.cpu_priority import autogroup_nice


@pytest.mark.parametrize(
    ("text", "nice"),
    [
        ("/autogroup-25780 nice 0\n", 0),
        ("/autogroup-7 nice 10\n", 10),
        ("/autogroup-7 nice -5\n", -5),
    ],
)
def test_a_session_autogroup_gives_its_nice(text: str, nice: int) -> None:
    assert autogroup_nice(text) == nice


@pytest.mark.parametrize("text", ["", "\n", "garbage nice x\n"])
def test_the_default_group_names_no_autogroup(text: str) -> None:
    # a process in the default group (CI's test runner): the kernel prints nothing
    assert autogroup_nice(text) is None
