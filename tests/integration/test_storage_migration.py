"""Migration 0014 on a database written in the format before it: every archived event
decodes to what was archived, sequence numbers stay, unarchived ledger entries stay
recoverable, and the ledger keeps every identity (dedupe)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from tenure.storage import archive, ledger
from tenure.storage.ledger import LedgerEntry
from tenure.storage.migrations import available_migrations, migrate
from tests.factories import make_event
from tests.integration.pipeline import archive_events

COMPACT = 14


def _migrated_before(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
        " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for m in available_migrations():
        if m.version < COMPACT:
            conn.execute(m.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (m.version, m.name, m.checksum),
            )
    conn.commit()


def test_0014_keeps_every_event_and_identity(postgres_server) -> None:
    name = f"m14_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url_for("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    source = "urn:tenure:migration"
    archived = [make_event("device.used", source=source, n=i) for i in range(5)]
    archived[1]["data"]["note"] = "ünïcode ✓"
    archived[2]["data"]["amount_minor"] = 2**64 + 7  # jsonb holds it; so must the payload
    unarchived = [make_event("feedback.submitted", source=source, n=i) for i in range(3)]
    now = datetime.now(UTC)
    with psycopg.connect(postgres_server.url_for(name)) as conn:
        _migrated_before(conn)
        for e in [*archived, *unarchived]:
            conn.execute(
                "INSERT INTO ingest_ledger (source, event_id, event_type, topic, record_key,"
                " envelope, producer, ingested_at) VALUES (%s, %s, %s, 't', 'k', %s, 'p', %s)",
                (e["source"], e["id"], e["type"], Jsonb(e), now),
            )
        for n, e in enumerate(archived):
            conn.execute(
                "INSERT INTO event_archive (source, event_id, event_type, event_time,"
                " record_key, envelope, ingested_at, topic, kafka_partition, kafka_offset)"
                " VALUES (%s, %s, %s, %s, 'k', %s, %s, 't', 0, %s)",
                (e["source"], e["id"], e["type"], now, Jsonb(e), now, n),
            )
        conn.execute("SELECT nextval('event_archive_seq_seq')")  # a rolled-back insert's seq
        conn.commit()
        seqs = [r[0] for r in conn.execute("SELECT seq FROM event_archive ORDER BY seq")]
        conn.rollback()

        assert [m.version for m in migrate(conn)][:1] == [COMPACT]

        conn.autocommit = False
        rows = archive.read_source(conn, source)
        assert [r.seq for r in rows] == seqs
        assert [r.envelope for r in rows] == archived
        again = {e.event_id: e.envelope for e in ledger.unarchived(conn)}
        assert again == {e["id"]: e for e in unarchived}
        entries = [
            LedgerEntry(e["source"], e["id"], e["type"], "t", "k", e, "p", now)
            for e in [*archived, *unarchived]
        ]
        assert ledger.claim(conn, entries) == set()  # every identity is still known
        new = make_event("device.used", source=source)
        archive_events(conn, [new])
        assert archive.read_source(conn, source)[-1].seq == seqs[-1] + 2  # the skipped one
