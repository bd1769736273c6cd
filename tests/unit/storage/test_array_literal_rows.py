"""``with_array_literals``: only the named columns become literals, in place."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenure.storage.arrays import int_array, text_array, with_array_literals


@given(
    st.lists(
        st.tuples(
            st.text(), st.lists(st.text()), st.integers(), st.lists(st.integers(-(2**40), 2**40))
        ),
        max_size=5,
    )
)
def test_only_the_named_array_columns_are_replaced(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    columns = ("id", "tags", "n", "weeks")
    out = list(with_array_literals(columns, rows, {"tags": "text", "weeks": "integer"}))
    assert out == [(i, text_array(t), n, int_array(w)) for i, t, n, w in rows]


def test_rows_are_converted_as_they_are_read() -> None:
    def rows():  # type: ignore[no-untyped-def]
        yield ("a", ["x"])
        raise AssertionError("read past the first row")

    converted = with_array_literals(("id", "tags"), rows(), {"tags": "text"})
    assert next(converted) == ("a", '{"x"}')
