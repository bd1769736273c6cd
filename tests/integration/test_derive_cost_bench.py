"""``python -m bench.derive_cost`` at a tiny size: it drives the real stages to the end."""

from __future__ import annotations

import psycopg

from bench.derive_cost import events_of, run


def test_the_harness_derives_everybody_it_applied(database_url: str) -> None:
    events = events_of(people=15, days=40)
    result = run(database_url, events, batch=100)
    assert result["events"] == len(events)
    assert result["persons_derived"] > 0 and result["derive_cpu_ms_per_person"] > 0
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT (SELECT count(*) FROM dirty_persons) + (SELECT count(*) FROM dirty_devices)"
            " + (SELECT count(*) FROM survival_dirty) + (SELECT count(*) FROM churn_pending)"
        ).fetchone()
        persons = conn.execute("SELECT count(*) FROM persons").fetchone()
    assert left == (0,)  # every queue drained after each batch
    assert persons is not None and persons[0] > 0
