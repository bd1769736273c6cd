"""``tenure audiences follow`` writes one line per record: the CloudEvent as it came, only
the asked audience's, and a record that is not a JSON object visibly, never dropped."""

from __future__ import annotations

import json

from tenure.entrypoints.audience_follow import line_of

EVENT = {
    "specversion": "1.0",
    "id": "abc",
    "type": "tenure.audience.entered",
    "subject": "~p:tok",
    "data": {"audience": "win-back", "change": "entered", "suppressed": None},
}


def test_a_change_is_written_as_it_came_and_filtered_by_audience() -> None:
    raw = json.dumps(EVENT).encode()
    line = line_of(raw, None)
    assert line is not None and "\n" not in line and json.loads(line) == EVENT
    assert line_of(raw, "win-back") == line
    assert line_of(raw, "advocates") is None


def test_a_record_that_is_not_a_json_object_is_written_not_dropped() -> None:
    for value, text in ((b"\xffgarbage", "\ufffdgarbage"), (b"[1, 2]", "[1, 2]"), (None, "")):
        line = line_of(value, "advocates")
        assert line is not None and json.loads(line) == {"undecodable": text}
