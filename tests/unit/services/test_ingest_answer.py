"""The ingest service's answer and envelopes, made without pydantic or per-event formatting,
are exactly what the declared models and ``CloudEvent.to_json_dict`` make."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.app import EventResultModel, IngestResponse, answer
from services.ingest.batch import BatchResult, EventResult, _envelope
from tenure.contract import EVENT_TYPES, CloudEvent, format_time, validate_event
from tests.unit.contract.samples import NOW, TOLERANCE, event

_text = st.none() | st.text(max_size=20)
_results = st.lists(
    st.builds(
        EventResult,
        index=st.integers(min_value=0, max_value=10_000),
        status=st.sampled_from(["accepted", "duplicate", "rejected"]),
        id=_text,
        source=_text,
        field=_text,
        reason=_text,
    ),
    min_size=1,
    max_size=20,
)


@given(results=_results)
def test_the_answer_is_the_declared_model_without_nulls(results: list[EventResult]) -> None:
    reply = answer(BatchResult(results), sent=len(results))
    declared = IngestResponse(
        accepted=sum(r.status == "accepted" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=[
            EventResultModel(
                index=r.index,
                status=r.status,
                id=r.id,
                source=r.source,
                field=r.field,
                reason=r.reason,
            )
            for r in results
        ],
    )
    assert orjson.loads(bytes(reply.body)) == declared.model_dump(exclude_none=True)
    everything_rejected = all(r.status == "rejected" for r in results)
    assert reply.status_code == (422 if everything_rejected else 200)
    assert reply.media_type == "application/json"


def _valid(raw: dict[str, object]) -> CloudEvent:
    checked = validate_event(raw, now=NOW, future_tolerance=TOLERANCE)
    assert isinstance(checked, CloudEvent), checked
    return checked


def test_the_envelope_is_to_json_dict_byte_for_byte() -> None:
    received = datetime(2024, 5, 1, 12, 0, 1, 250_000, tzinfo=UTC)
    stamp = format_time(received)
    for event_type in EVENT_TYPES:
        checked = _valid(event(event_type))
        assert orjson.dumps(_envelope(checked, stamp)) == orjson.dumps(
            checked.to_json_dict(ingest_time=received)
        )


def test_a_sent_ingest_time_is_replaced_where_it_stood() -> None:
    received = datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)
    checked = _valid(event("device.used", ingesttime="1999-01-01T00:00:00Z", traceparent="00-x"))
    made = _envelope(checked, format_time(received))
    assert orjson.dumps(made) == orjson.dumps(checked.to_json_dict(ingest_time=received))
    assert made["ingesttime"] == "2024-05-01T12:00:01Z"
