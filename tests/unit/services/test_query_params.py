"""Bounds of the query API's parameters (issue 11): pure checks, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest
from fastapi import FastAPI, Query

from services.query.params import (
    MAX_GROUPS,
    NO_NUL,
    answer_invalid_parameters,
    check_group_count,
)
from services.query.survival import AsOfError, _selected, resolve_as_of
from tenure.analytics.survival_report import SelectorError
from tenure.storage.survival_reads import AggregateState

WATERMARK = datetime(2026, 11, 1, tzinfo=UTC)
STATE = AggregateState(WATERMARK, 30)


def test_eight_thousand_groups_are_refused_before_any_is_read() -> None:
    groups = ",".join(f"product:p{i}" for i in range(8000))
    assert check_group_count(groups) == "groups: 8000 group selectors; at most 20 per request"
    with pytest.raises(SelectorError, match="at most 20"):
        _selected(groups)


def test_up_to_the_maximum_number_of_groups_is_fine() -> None:
    groups = ",".join(f"product:p{i}" for i in range(MAX_GROUPS))
    assert check_group_count(groups) is None
    assert len(_selected(groups)) == MAX_GROUPS
    assert check_group_count(None) is None
    assert check_group_count(" , ,all, ") is None


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:30:00+01:00",  # overflows when brought to UTC
        "9999-12-31T23:00:00-05:00",  # overflows when brought to UTC
        "1969-12-31T23:59:59Z",
        "9999-12-31T00:00:00Z",  # further past the watermark than allowed
        "2026-10-31T00:00:00Z",  # before the watermark
        "2026-11-02T00:00:00",  # no time zone
        "yesterday",
        "2026-11-02T00:00:00Z\x00",
    ],
)
def test_unusable_as_of_is_an_as_of_error(text: str) -> None:
    with pytest.raises(AsOfError):
        resolve_as_of(text, STATE)


def test_as_of_within_the_bounds_is_read_in_utc() -> None:
    assert resolve_as_of(None, STATE) == WATERMARK
    latest = WATERMARK + timedelta(days=3650)
    assert resolve_as_of(latest.isoformat(), STATE) == latest
    assert resolve_as_of("2026-11-02T01:00:00+01:00", STATE) == datetime(2026, 11, 2, tzinfo=UTC)
    # Without aggregates any instant in the calendar range is accepted (nothing is computed).
    empty = AggregateState(None, 30)
    assert resolve_as_of("8999-01-01T00:00:00Z", empty) == datetime(8999, 1, 1, tzinfo=UTC)


def test_invalid_parameters_are_answered_422_with_one_error_sentence() -> None:
    app = FastAPI()
    answer_invalid_parameters(app)

    @app.get("/things")
    def things(
        name: str | None = Query(None, max_length=5, pattern=NO_NUL),
        code: str | None = Query(None, pattern="^[a-z]+$"),
        limit: int = Query(1, ge=1, le=10),
    ) -> dict[str, str]:
        return {"ok": "yes"}

    def get(**params: object) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
                return await client.get("/things", params=params)

        return anyio.run(call)

    assert get(name="ab").json() == {"ok": "yes"}
    cases = {
        "a\x00b": "name: must not contain the NUL character (U+0000)",
        "abcdef": "name: String should have at most 5 characters",
    }
    for name, error in cases.items():
        reply = get(name=name)
        assert (reply.status_code, reply.json()) == (422, {"error": error})
    reply = get(code="A")
    assert reply.json() == {"error": "code: String should match pattern '^[a-z]+$'"}
    reply = get(limit=10**30, name="\x00")
    assert reply.status_code == 422
    assert reply.json()["error"] == (
        "name: must not contain the NUL character (U+0000); "
        "limit: Input should be less than or equal to 10"
    )
