"""The pseudonym vault: the installation secret, each token's person id, erased tokens.

See docs/design/erasure.md. The vault is the only table that maps a token back to an id;
erasure clears the id and keeps the row (``erased_at``), so the id is never registered
again. ``privacy_state.erasures`` counts purges: the projector's apply transactions read it
under a shared advisory lock that a purge takes exclusively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from tenure.storage.connection import Conn

ERASURE_LOCK = 0x7E5A_E7A5
"""Advisory lock key: shared by writers of the projection, exclusive for a purge."""


def load_secret(conn: Conn) -> bytes:
    """The installation secret of the keyed hash (made by migration 0009)."""
    row = conn.execute("SELECT secret FROM privacy_secret").fetchone()
    if row is None:
        raise RuntimeError("privacy_secret is empty: run `tenure migrate`")
    return bytes(row[0])


def register(conn: Conn, pairs: Mapping[str, str]) -> None:
    """Record ``token -> person id`` pairs; an erased or known token is left as it is."""
    if not pairs:
        return
    tokens = sorted(pairs)
    conn.execute(
        "INSERT INTO person_pseudonyms (pseudonym, person_id)"
        " SELECT * FROM unnest(%b::text[], %b::text[]) ON CONFLICT (pseudonym) DO NOTHING",
        (tokens, [pairs[t] for t in tokens]),
    )


def resolve(conn: Conn, tokens: Iterable[str]) -> dict[str, str | None]:
    """Each known token's person id (``None``: erased); unknown tokens are left out."""
    keys = sorted(set(tokens))
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT pseudonym, person_id FROM person_pseudonyms WHERE pseudonym = ANY(%b)", (keys,)
    ).fetchall()
    return {str(r[0]): None if r[1] is None else str(r[1]) for r in rows}


def erased_tokens(conn: Conn) -> tuple[int, frozenset[str]]:
    """The erasure generation and every erased token (read in one snapshot)."""
    row = conn.execute(
        "SELECT (SELECT erasures FROM privacy_state),"
        " ARRAY(SELECT pseudonym FROM person_pseudonyms WHERE person_id IS NULL)"
    ).fetchone()
    assert row is not None
    return int(row[0]), frozenset(str(t) for t in row[1])


def hold_shared(conn: Conn) -> int:
    """Take the erasure lock shared for the transaction; return the erasure generation.

    Must run in a read committed transaction, before anything that depends on erasures:
    the generation is read by a second statement, whose snapshot is taken after the lock
    was granted (so after any purge that held it committed).
    """
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (ERASURE_LOCK,))
    row = conn.execute("SELECT erasures FROM privacy_state").fetchone()
    assert row is not None
    return int(row[0])


def lock_session_shared(conn: Conn) -> None:
    """Take the erasure lock shared for the session (around repeatable read work)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock_shared(%s)", (ERASURE_LOCK,))


def unlock_session_shared(conn: Conn) -> None:
    """Release :func:`lock_session_shared`."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_unlock_shared(%s)", (ERASURE_LOCK,))


def hold_exclusive(conn: Conn) -> None:
    """Take the erasure lock exclusively for the transaction (a purge)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ERASURE_LOCK,))


def mark_erased(conn: Conn, tokens: Mapping[str, datetime]) -> None:
    """Clear the person id of each token (keeping the earliest erasure time); bump the
    erasure generation. Runs in the purge's transaction."""
    keys = sorted(tokens)
    conn.execute(
        "INSERT INTO person_pseudonyms (pseudonym, person_id, erased_at)"
        " SELECT t, NULL, at FROM unnest(%b::text[], %b::timestamptz[]) AS x(t, at)"
        " ON CONFLICT (pseudonym) DO UPDATE SET person_id = NULL,"
        " erased_at = LEAST(person_pseudonyms.erased_at, EXCLUDED.erased_at)",
        (keys, [tokens[k] for k in keys]),
    )
    conn.execute("UPDATE privacy_state SET erasures = erasures + 1")
