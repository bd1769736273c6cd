"""Tokenising events where Tenure publishes them (docs/design/erasure.md).

The ingest service and the SDK validator replace every person id of an accepted event by
its token before the event is written anywhere (ledger, topic, hence archive), and record
each token's id in the vault in the same step. The record key of the payment and person
topics is the token, so a person's events still share a partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from tenure.contract.topics import ROUTES
from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.storage import person_pseudonyms
from tenure.storage.ledger import LedgerEntry

_PSEUDONYMISERS: dict[tuple[str, str, str], Pseudonymiser] = {}


def pseudonymiser_for(conn: psycopg.Connection[Any]) -> Pseudonymiser:
    """The pseudonymiser of the connection's database (its secret is read once)."""
    info = conn.info
    where = (str(info.host), str(info.port), str(info.dbname))
    found = _PSEUDONYMISERS.get(where)
    if found is None:
        found = _PSEUDONYMISERS[where] = Pseudonymiser(person_pseudonyms.load_secret(conn))
    return found


def tokenised(
    pseudonymiser: Pseudonymiser,
    envelope: Mapping[str, Any],
    key: str,
    registry: dict[str, str],
) -> tuple[dict[str, Any], str]:
    """The envelope with person ids replaced by tokens, and its record key (the token when
    the route's key field is a person id); pairs to register are added to ``registry``."""
    out = pseudonymiser.tokenise_envelope(envelope, registry)
    route = ROUTES.get(str(envelope.get("type")))
    data = out.get("data")
    if route is not None and isinstance(data, Mapping):
        value = data.get(route.key_field)
        if isinstance(value, str):
            key = value
    return out, key


def tokenise_ledger_entries(
    conn: psycopg.Connection[Any], entries: Sequence[LedgerEntry]
) -> list[LedgerEntry]:
    """Ingest's hook: the entries with tokens for person ids, their vault rows written in
    the caller's transaction, which must commit before the records are published (a
    consumer resolves every token it meets through the vault)."""
    pseudonymiser = pseudonymiser_for(conn)
    registry: dict[str, str] = {}
    out = []
    for entry in entries:
        envelope, key = tokenised(pseudonymiser, entry.envelope, entry.record_key, registry)
        out.append(  # not dataclasses.replace: it inspects the fields on every call
            LedgerEntry(
                entry.source,
                entry.event_id,
                entry.event_type,
                entry.topic,
                key,
                envelope,
                entry.producer,
                entry.ingested_at,
            )
        )
    person_pseudonyms.register(conn, registry)
    return out


class VaultConnection:
    """A publish boundary's own connection to the vault (the SDK validator's), opened on
    first use and opened again after a failure."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.Connection[Any] | None = None
        self._pseudonymiser: Pseudonymiser | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True)
        return self._conn

    def pseudonymiser(self) -> Pseudonymiser:
        """The installation's pseudonymiser (blocking: reads the secret once)."""
        if self._pseudonymiser is None:
            self._pseudonymiser = Pseudonymiser(person_pseudonyms.load_secret(self._connection()))
        return self._pseudonymiser

    def register(self, registry: Mapping[str, str]) -> None:
        """Write vault rows (blocking; call before the tokenised records are sent)."""
        if not registry:
            return
        try:
            conn = self._connection()
            with conn.transaction():
                person_pseudonyms.register(conn, registry)
        except psycopg.OperationalError:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
