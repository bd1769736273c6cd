"""Consent through the real pipeline: ingest (HTTP, pseudonymised) -> broker -> projector ->
``persons.consent`` -> query API, then replay, then erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tenure.domain.events import parse_event
from tenure.privacy.boundary import pseudonymiser_for
from tenure.projection.replay import replay
from tenure.runtime.broker import LocalBroker
from tenure.storage.raw_states import PERSONS, read_all
from tenure.storage.read_models import PERSON_COLUMNS
from tests.factories import make_event
from tests.integration.pipeline import front_door
from tests.integration.projection_harness import (
    LATENESS,
    Projection,
    post,
    rows,
    the_fold,
    wait_archived,
)

pytestmark = pytest.mark.kafka

CONSENT = PERSON_COLUMNS.index("consent")


def test_the_person_view_shows_the_latest_consent_and_erasure_removes_it(
    broker: LocalBroker, pool, database_url: str
) -> None:
    u = uuid.uuid4().hex[:8]
    source = f"urn:tenure:consent-test:{u}"
    ann, ann_web, bo = f"ann-{u}", f"ann-web-{u}", f"bo-{u}"
    start = datetime.now(UTC) - timedelta(days=30)
    sent: list[dict] = []

    def event(kind: str, day: float, ident: str | None = None, **data: object) -> dict:
        at = start + timedelta(days=day)
        made = make_event(kind, source=source, at=at, data=data)
        if ident is not None:
            made["id"] = f"{ident}-{u}"
        sent.append(made)
        return made

    def consent(person: str, channel: str, granted: bool, day: float, ident: str) -> dict:
        return event(
            "person.consent_changed", day, ident, person_id=person, channel=channel, granted=granted
        )

    # ann_web's own consent (push) makes the erased id's raw state hold a fact to remove.
    # Delivered against event time: the withdrawal (day 5) arrives before the grant (day 1),
    # the alias's grant before the link, and one change twice.
    withdrawal = consent(ann, "email", False, 5, "c-email-off")
    batch_one = [
        withdrawal,
        consent(ann_web, "push", True, 3, "c-push-on"),
        consent(bo, "sms", True, 2, "c-bo-sms"),
        consent(bo, "sms", False, 2, "c-bo-sms-off"),  # same instant: the withdrawal wins
    ]
    batch_two = [
        consent(ann, "email", True, 1, "c-email-on"),
        event("identity.linked", 2, person_id=ann, alias_id=ann_web),
        consent(ann, "sms", True, 4, "c-sms-on"),
        event("feedback.submitted", 6, person_id=ann, channel="app", rating=5),
        withdrawal,  # a retry: the same event again
    ]
    distinct = len({(e["source"], e["id"]) for e in sent})
    projection = Projection(pool, broker, source)
    try:
        with front_door(pool, broker.bootstrap, "consent-test-reader") as (ingest, token, read):

            def person(pid: str) -> httpx.Response:
                return read(f"/v1/persons/{pid}")

            post(ingest, token, batch_one)
            post_duplicates_too(ingest, token, batch_two)
            wait_archived(database_url, source, distinct)
            assert projection.catch_up() >= distinct

            human = {"email": False, "push": True, "sms": True}
            for pid in (ann, ann_web):
                body = person(pid).json()
                assert body["person_id"] == min(ann, ann_web)
                assert body["consent"] == human
            assert person(bo).json()["consent"] == {"sms": False}

            # The read model equals the pure fold of the events as sent, consent included.
            mine = {min(ann, ann_web), bo}
            as_of = max(parse_event(e).at for e in sent) - LATENESS
            want, _ = the_fold(sent, as_of)
            got = [r for r in rows(database_url, "persons", PERSON_COLUMNS, as_of) if r[0] in mine]
            assert got == [r for r in want if r[0] in mine]
            assert {r[0]: r[CONSENT] for r in got} == {min(ann, ann_web): human, bo: {"sms": False}}

            # A replay from the archive fills the column with the same values.
            replay(database_url, as_of=as_of)
            replayed = rows(database_url, "persons", PERSON_COLUMNS, as_of)
            assert [r for r in replayed if r[0] in mine] == got

            # Erasing the alias erases the human: no row, no consent fact left anywhere.
            post(ingest, token, [event("person.erasure_requested", 7, person_id=ann_web)])
            post(ingest, token, [consent(ann, "email", True, 8, "c-after")])
            wait_archived(database_url, source, distinct + 2)
            projection.catch_up()
            for pid in (ann, ann_web):
                assert person(pid).status_code == 404
            assert person(bo).json()["consent"] == {"sms": False}
            with pool.connection() as conn:
                tokens = {pid: pseudonymiser_for(conn).token(pid) for pid in (ann, ann_web)}
                states = read_all(conn, PERSONS)
                remaining = conn.execute(
                    "SELECT count(*) FROM persons WHERE person_id = ANY(%s)",
                    (sorted({ann, ann_web, *tokens.values()}),),
                ).fetchone()
            assert remaining == (0,)
            # The erased id's raw state is a tombstone: its consent facts are gone. (The other
            # ids of the human keep their facts under their tokens and are erased when the
            # human is resolved, docs/design/erasure.md: the view above is gone.)
            tombstone = states[tokens[ann_web]]
            assert tombstone.erased and not tombstone.consent
    finally:
        projection.publisher.close()


def post_duplicates_too(url: str, token: str, events: list[dict]) -> None:
    """Post a batch that may repeat an event already accepted (answered as a duplicate)."""
    response = httpx.post(
        f"{url}/v1/events", json=events, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert set(statuses) <= {"accepted", "duplicate"} and "accepted" in statuses, statuses
