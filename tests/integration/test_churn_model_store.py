"""The live return-time counts in Postgres equal the counts computed afresh from the days."""

from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

import psycopg

from tenure.analytics.return_times import ReturnTimeCounts, bucket_after, fit, person_gaps
from tenure.storage.churn_model import (
    drain,
    queue_people,
    read_counts,
    read_model,
    read_pending,
    rebuild,
    record_person,
)

DAY0 = date(2025, 1, 1)
AS_OF = date(2025, 9, 1)


def history(rng: random.Random) -> list[date]:
    return sorted({DAY0 + timedelta(days=rng.randrange(240)) for _ in range(rng.randrange(1, 30))})


def test_incremental_counts_equal_a_fresh_count_through_changes_and_erasure(
    database_url: str,
) -> None:
    rng = random.Random(5)
    people = {f"p{n}": history(rng) for n in range(60)}
    groups = {
        pid: rng.choice(["*", "entry:connected_buyer", "entry:non_paying_user"]) for pid in people
    }
    with psycopg.connect(database_url) as conn:
        for pid, days in people.items():
            record_person(conn, pid, days[: len(days) // 2 + 1], groups[pid])
        for pid, days in people.items():  # their later days arrive: move to the new filing
            record_person(conn, pid, days, groups[pid])
        for pid in list(people)[:10]:  # forgotten
            record_person(conn, pid, None)
            del people[pid]
        record_person(conn, "p-again", people["p20"], "*")
        record_person(conn, "p-again", people["p20"], "*")  # the same days twice: no change
        people["p-again"], groups["p-again"] = people["p20"], "*"
        conn.commit()
        live = read_counts(conn)
        fresh = ReturnTimeCounts.of(person_gaps(days, groups[pid]) for pid, days in people.items())
        assert live.returns == fresh.returns
        assert live.open_since == fresh.open_since
        assert read_model(conn, AS_OF).hazards == fit(fresh, AS_OF).hazards
        zeros = conn.execute(
            "SELECT (SELECT count(*) FROM churn_return_counts WHERE n <= 0)"
            " + (SELECT count(*) FROM churn_open_gaps WHERE n <= 0)"
        ).fetchone()
        assert zeros == (0,)

        counted = rebuild(conn, ((pid, days, groups[pid]) for pid, days in people.items()))
        conn.commit()
        assert counted == len(people)
        again = read_counts(conn)
        assert again.returns == fresh.returns and again.open_since == fresh.open_since

        model = read_model(conn, AS_OF)
        days = people["p20"]
        gaps = [(b - a).days for a, b in itertools.pairwise(days)]
        p = model.silent_probability(bucket_after(gaps), (AS_OF - days[-1]).days, 30)
        assert 0.0 <= p <= 1.0


def test_queued_people_reach_the_counts_when_drained(database_url: str) -> None:
    rng = random.Random(9)
    people = {f"q{n}": history(rng) for n in range(40)}
    with psycopg.connect(database_url) as conn:
        queue_people(conn, ((pid, days[:3], "*") for pid, days in people.items()))
        queue_people(conn, ((pid, days, "*") for pid, days in people.items()))  # last wins
        queue_people(conn, [("q0", None, "*")])  # erased before the drain
        conn.commit()
        assert read_counts(conn).returns == {}  # nothing moves before the drain
        drained = 0
        while n := drain(conn, limit=7):
            drained += n
        conn.commit()
        assert drained == 40
        del people["q0"]
        fresh = ReturnTimeCounts.of(person_gaps(days) for days in people.values())
        live = read_counts(conn)
        assert live.returns == fresh.returns and live.open_since == fresh.open_since
        pending = conn.execute("SELECT count(*) FROM churn_pending").fetchone()
        assert pending == (0,)


def test_queueing_a_person_never_waits_for_a_drain_holding_them(database_url: str) -> None:
    """``churn_pending`` is a queue of marks (migration 0026): a derive pass queueing a
    person a drain has claimed appends a mark instead of waiting for the drain's
    transaction (with a primary key, the upsert waited on the drain's deleted row)."""
    first, later = [DAY0, DAY0 + timedelta(days=3)], [DAY0, DAY0 + timedelta(days=3), AS_OF]
    with (
        psycopg.connect(database_url, autocommit=True) as deriver,
        psycopg.connect(database_url) as drainer,
        psycopg.connect(database_url, autocommit=True) as other_drainer,
    ):
        queue_people(deriver, [("p", first, "*")])
        for conn in (deriver, other_drainer):  # waiting for the drain fails the test
            conn.execute("SET lock_timeout = '5s'")
        with drainer.transaction():  # the drain holds p's mark until this block ends
            assert drain(drainer) == 1
            queue_people(deriver, [("p", later, "*")])
            assert drain(other_drainer) == 0  # p is held: skipped, not waited for
        assert read_pending(deriver) == {"p": ("*", later)}
        queue_people(deriver, [("p", first, "*"), ("p", later, "*")])  # last wins
        assert drain(deriver) == 1
        assert read_pending(deriver) == {}
        fresh = ReturnTimeCounts.of([person_gaps(later)])
        live = read_counts(deriver)
        assert live.returns == fresh.returns and live.open_since == fresh.open_since


def test_a_reused_model_follows_every_change_of_the_counts(database_url: str) -> None:
    """``read_model`` reuses a fitted model only while the counts keep their version."""
    rng = random.Random(11)
    people = {f"v{n}": history(rng) for n in range(30)}
    with psycopg.connect(database_url) as conn:
        rebuild(conn, ((pid, days, "*") for pid, days in people.items()))
        conn.commit()
        first = read_model(conn, AS_OF)
        assert read_model(conn, AS_OF) is first  # same counts, same as-of: reused
        assert read_model(conn, AS_OF + timedelta(days=1)) is not first
        steps = [
            lambda: record_person(conn, "v0", [*people["v0"], AS_OF - timedelta(days=2)]),
            lambda: record_person(conn, "v1", None),
            lambda: queue_people(conn, [("v9", people["v9"][:1], "*")]) and drain(conn),
            lambda: rebuild(conn, ((pid, days, "*") for pid, days in people.items())),
        ]
        for step in steps:
            before = read_model(conn, AS_OF)
            step()
            conn.commit()
            after = read_model(conn, AS_OF)
            assert after is not before
            assert after.hazards == fit(read_counts(conn), AS_OF).hazards
        unchanged = read_model(conn, AS_OF)
        record_person(conn, "v2", people["v2"])  # the same days again: no change
        conn.commit()
        assert read_model(conn, AS_OF) is unchanged
