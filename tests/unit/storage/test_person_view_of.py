"""``person_view_of`` is the inverse of ``person_row``: a stored row gives back the view it
was written from (hypothesis, over views the pure fold derives from random event sets)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.domain.world import fold, views
from tenure.storage.read_models import STORED_PERSON_COLUMNS, person_view_of, stored_person_row
from tests.unit.domain.scenario import T0
from tests.unit.domain.strategies import event_sets


@settings(max_examples=150, deadline=None)
@given(events=event_sets(max_size=25), days=st.integers(0, 200))
def test_a_row_gives_back_the_view_it_was_written_from(events: list, days: int) -> None:
    as_of = T0 + timedelta(days=days)
    for view in views(fold(events), as_of).values():
        if view.erased:
            continue
        row = dict(zip(STORED_PERSON_COLUMNS, stored_person_row(view, (), None), strict=True))
        assert person_view_of(row) == view


def test_json_columns_read_as_documents_or_text() -> None:
    view = next(
        v for v in views(fold(_some_events()), T0 + timedelta(days=30)).values() if v.net_spend
    )
    row = dict(zip(STORED_PERSON_COLUMNS, stored_person_row(view, (), None), strict=True))
    import orjson

    decoded = {
        k: orjson.loads(v) if k in ("churn_inputs", "net_spend_minor", "consent") else v
        for k, v in row.items()
    }
    assert person_view_of(decoded) == person_view_of(row) == view


def _some_events() -> list:
    from tenure.domain import EventId, PaymentCompleted, PaymentItem, PersonConsentChanged

    eid: EventId = ("shop", "1")
    return [
        PaymentCompleted(
            eid, T0, "o1", "p1", (PaymentItem("watch-1", "hardware", 100, "USD", None),), None
        ),
        PaymentCompleted(
            ("shop", "2"),
            T0,
            "o2",
            "p1",
            (PaymentItem("band", "accessory", 5, "EUR", None),),
            None,
        ),
        PersonConsentChanged(("crm", "3"), T0, "p1", "sms", True),
        PersonConsentChanged(("crm", "4"), T0, "p1", "email", False),
    ]
