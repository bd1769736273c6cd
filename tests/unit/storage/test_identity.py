"""The storage key of an event's identity (tenure/storage/identity.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenure.storage.identity import identity_key

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))


def test_the_separator_keeps_source_and_id_apart() -> None:
    assert identity_key("urn:a", "b:c") != identity_key("urn:a:b", "c")
    assert identity_key("s", "1") == identity_key("s", "1")


@given(a=st.tuples(texts, texts), b=st.tuples(texts, texts))
def test_distinct_identities_get_distinct_keys(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert (identity_key(*a) == identity_key(*b)) == (a == b)
