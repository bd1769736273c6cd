"""Array parameters sent as literals (``tenure.storage.arrays``) reach Postgres unchanged."""

from __future__ import annotations

from datetime import date

import psycopg

from tenure.storage.arrays import array_literal, date_array, int_array, text_array


def test_literals_round_trip_through_postgres(database_url: str) -> None:
    texts = ["plain", 'with "quotes"', "back\\slash", "comma, brace } {", "NULL", "", " sp "]
    days = [date(2025, 1, 1), date(1999, 12, 31), date(2026, 11, 27)]
    ints = [0, -5, 2**40]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT %s::text[], %s::text[], %s::date[], %s::bigint[], %s::integer[], %s::text[]",
            (
                text_array(texts),
                text_array(["a", None]),
                date_array(days),
                int_array(ints),
                array_literal([1, 2], "integer"),
                text_array([]),
            ),
        ).fetchone()
    assert row == (texts, ["a", None], days, ints, [1, 2], [])
