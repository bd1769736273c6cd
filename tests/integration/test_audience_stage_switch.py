"""``TENURE_AUDIENCES=off``: the projector runs no audience stage (no membership, no change,
nothing on ``tenure.audiences.v1``); switched back on, the stage catches up from where it
stopped, as if it had been on."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tenure.eventlog.publisher import EventPublisher
from tenure.projection.projector import Projector
from tenure.runtime.broker import LocalBroker
from tests.integration.test_audience_changes import LATENESS, People, members

pytestmark = pytest.mark.kafka


def test_switched_off_the_stage_writes_nothing_and_catches_up_when_on(
    broker: LocalBroker, pool: Any, database_url: str
) -> None:
    people = People()
    name = people.audience.name
    publisher = EventPublisher(broker.bootstrap)
    try:
        off = Projector(pool, publisher, allowed_lateness=LATENESS,
                        audiences=lambda conn: [people.audience], audience_stage=False)  # fmt: skip
        day_zero = [people.paid(people.ann, 0), people.paid(people.bob, 0),
                    people.consent(people.bob, 0), people.used(people.carol, 1)]  # fmt: skip
        off.project(people.records(day_zero))
        off.settle()
        assert off.follow_audiences() == 0
        assert members(database_url, name) == {}
        with psycopg.connect(database_url) as conn:
            changes = conn.execute("SELECT count(*) FROM audience_changes").fetchone()
        assert changes == (0,)

        on = Projector(pool, publisher, allowed_lateness=LATENESS,
                       audiences=lambda conn: [people.audience])  # fmt: skip
        assert on.follow_audiences() == 2
        assert members(database_url, name) == {people.ann: "no_consent", people.bob: None}
    finally:
        publisher.close()
