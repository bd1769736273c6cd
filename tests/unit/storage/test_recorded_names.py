"""An archiver's cache of recorded key names never claims a name whose row did not commit
(pure: the transactions are modelled)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenure.storage.archive_keys import DEVICE, PERSON, Name, RecordedNames

names = st.tuples(st.sampled_from(["d1", "d2", "p:1", "12"]), st.sampled_from([DEVICE, PERSON]),
                  st.sampled_from(["a", "b", "c", "1:2"]))  # fmt: skip
attempts = st.lists(st.tuples(st.lists(names, max_size=4), st.booleans()), max_size=4)
"""One transaction's savepoints: the names each sends, and whether it rolls back."""
transactions = st.lists(st.tuples(attempts, st.booleans()), max_size=6)
"""Transactions, and whether each commits."""


@given(transactions, st.integers(2, 20))
def test_it_skips_only_committed_names_and_sends_the_rest_once(
    script: list[tuple[list[tuple[list[Name], bool]], bool]], limit: int
) -> None:
    recorded = RecordedNames(limit)
    committed: set[Name] = set()  # what the table holds
    known: set[Name] = set()  # what the cache should know: committed, less what it forgot
    for savepoints, commits in script:
        sent: set[Name] = set()  # what the transaction wrote so far
        for wanted, rolls_back in savepoints:
            mark = recorded.mark()
            fresh = recorded.unsent(wanted)
            assert set(fresh) == set(wanted) - known - sent
            assert not set(fresh) & sent  # never sent twice in one transaction
            if rolls_back:
                recorded.forget_since(mark)
            else:
                sent |= set(fresh)
        if commits:
            recorded.commit()
            committed |= sent
            if len(known) + len(sent) > limit:
                known = set()
            known |= sent
        else:
            recorded.forget_pending()
        # Sound: every name it skips is in the table.
        probe = [(k, c, n) for k in ("d1", "d2", "p:1", "12") for c in (DEVICE, PERSON)
                 for n in ("a", "b", "c", "1:2")]  # fmt: skip
        mark = recorded.mark()
        assert set(probe) - set(recorded.unsent(probe)) <= committed
        recorded.forget_since(mark)
        assert known <= committed
        assert len(recorded) == len(known)


def test_a_full_cache_starts_again_and_sends_names_once_more() -> None:
    recorded = RecordedNames(limit=2)
    first = [("d1", DEVICE, "a"), ("d1", PERSON, "b")]
    assert recorded.unsent(first) == first
    recorded.commit()
    assert recorded.unsent(first) == []
    third = [("d2", DEVICE, "c")]
    assert recorded.unsent(third) == third
    recorded.commit()  # 3 > 2: forgotten, then the pending one known
    assert len(recorded) == 1
    assert recorded.unsent(first) == first
