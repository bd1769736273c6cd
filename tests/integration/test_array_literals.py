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


def test_person_rows_keep_every_array_value_through_the_copy(database_url: str) -> None:
    """The persons ``COPY`` sends its array columns as literals (``with_array_literals``):
    ids, tags and products with quotes, backslashes, tabs, newlines, commas and braces,
    and the engaged weeks, read back exactly as the row held them."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from tenure.domain.view import absent_view
    from tenure.storage.postgres_store import postgres_store
    from tenure.storage.read_models import stored_person_row

    odd = ['q"uote', "back\\slash", "tab\there", "new\nline", "a,b", "{brace}", "NULL", " "]
    view = replace(
        absent_view("p-1", datetime(2026, 11, 27, tzinfo=UTC)),
        tags=tuple(odd),
        products=("watch", *odd),
        engaged_weeks=(0, 3, 52),
    )
    row = (*stored_person_row(view, odd, None), 7)
    with psycopg.connect(database_url) as conn:
        assert postgres_store(conn).read_models.upsert_persons([row]) == set()
        stored = conn.execute(
            "SELECT aliases, tags, products, engaged_weeks FROM persons WHERE person_id = 'p-1'"
        ).fetchone()
    assert stored == (sorted(odd), odd, ["watch", *odd], [0, 3, 52])
