"""``tenure worker projector --stages``: which parts of the projector a process runs."""

from __future__ import annotations

import pytest

from streams.projector.app import ALL_STAGES, parse_stages


def test_all_and_lists_name_the_stages() -> None:
    assert parse_stages("all") == ALL_STAGES == {"apply", "derive", "follow"}
    assert parse_stages("apply") == {"apply"}
    assert parse_stages("derive,follow") == {"derive", "follow"}
    assert parse_stages(" follow , apply ") == {"apply", "follow"}


@pytest.mark.parametrize("text", ["", "both", "derive,publish", "all,apply", ","])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be all or a list of apply,derive,follow"):
        parse_stages(text)
