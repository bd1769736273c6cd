-- Compact event storage (issue 10, item 5; docs/design/event-storage.md).
--
-- Before: ingest_ledger and event_archive each kept the whole envelope as jsonb, with
-- columns repeating attributes of it (~1.7 KB of Postgres per event). After:
-- - ingest_ledger keeps only the identity of each event accepted over HTTP (dedupe);
-- - ingest_pending keeps the record of an acknowledged event until the archive has it
--   (broker-loss recovery republishes from it); the archiver deletes its rows;
-- - event_archive keeps the envelope in `payload`, a bytea encoded by
--   tenure/storage/archive.py (format byte + deflate with a preset dictionary, without
--   `id` and `source`, which are columns). Rows archived before this migration become
--   format 0 (the envelope's JSON text); tenure/storage/archive.py decodes both.
-- All three are unique on `identity`: the first 128 bits of SHA-256 over source, NUL and id,
-- as a uuid (tenure/storage/identity.py computes the same in Python), a far smaller btree
-- entry than the two texts. The texts stay in the rows.
-- Both tables are rewritten (not ALTERed) so that the dropped columns' space is returned.

CREATE TABLE ingest_pending (
    identity    uuid PRIMARY KEY,
    ingested_at timestamptz NOT NULL,
    source      text NOT NULL,
    event_id    text NOT NULL,
    topic       text NOT NULL,
    record_key  text NOT NULL,
    envelope    bytea NOT NULL  -- the envelope's JSON, as published
);
-- A queue: rows are inserted and deleted all the time; vacuum it often so its pages are
-- reused instead of the table growing with every event.
ALTER TABLE ingest_pending SET (
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0
);

INSERT INTO ingest_pending (identity, source, event_id, topic, record_key, envelope,
                            ingested_at)
SELECT encode(substring(sha256(convert_to(l.source, 'UTF8') || '\x00'::bytea
       || convert_to(l.event_id, 'UTF8')) FROM 1 FOR 16), 'hex')::uuid,
       l.source, l.event_id, l.topic, l.record_key, convert_to(l.envelope::text, 'UTF8'),
       l.ingested_at
FROM ingest_ledger l
WHERE NOT EXISTS (SELECT 1 FROM event_archive a
                  WHERE a.source = l.source AND a.event_id = l.event_id);

CREATE TABLE ingest_ledger_compact (
    identity    uuid NOT NULL,
    ingested_at timestamptz NOT NULL,
    source      text NOT NULL,
    event_id    text NOT NULL,
    producer    text NOT NULL
);
INSERT INTO ingest_ledger_compact (identity, ingested_at, source, event_id, producer)
SELECT encode(substring(sha256(convert_to(source, 'UTF8') || '\x00'::bytea
       || convert_to(event_id, 'UTF8')) FROM 1 FOR 16), 'hex')::uuid,
       ingested_at, source, event_id, producer
FROM ingest_ledger;
DROP TABLE ingest_ledger;
ALTER TABLE ingest_ledger_compact RENAME TO ingest_ledger;
ALTER TABLE ingest_ledger ADD PRIMARY KEY (identity);

-- Fixed-width columns first (no alignment padding), then the variable ones.
CREATE TABLE event_archive_compact (
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    kafka_offset    bigint NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now(),
    kafka_partition integer NOT NULL,
    identity        uuid NOT NULL,
    source          text NOT NULL,
    event_id        text NOT NULL,
    record_key      text NOT NULL,
    topic           text NOT NULL,
    event_type      text NOT NULL,  -- read by the pipeline-health dashboard's SQL panel
    payload         bytea NOT NULL  -- tenure/storage/archive.py: encode_payload
);
INSERT INTO event_archive_compact (seq, kafka_offset, archived_at, kafka_partition, identity,
                                   source, event_id, record_key, topic, event_type, payload)
OVERRIDING SYSTEM VALUE
SELECT seq, kafka_offset, archived_at, kafka_partition,
       encode(substring(sha256(convert_to(source, 'UTF8') || '\x00'::bytea
       || convert_to(event_id, 'UTF8')) FROM 1 FOR 16), 'hex')::uuid,
       source, event_id, record_key, topic, event_type, '\x00'::bytea || convert_to(envelope::text, 'UTF8')
FROM event_archive ORDER BY seq;
-- seq goes on from where it was (never reused: the convergence checkpoint and dead letters
-- name archive rows by seq).
SELECT setval(pg_get_serial_sequence('event_archive_compact', 'seq'),
              greatest((SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END
                        FROM event_archive_seq_seq),
                       (SELECT coalesce(max(seq), 0) + 1 FROM event_archive_compact)),
              false);
DROP TABLE event_archive;
ALTER TABLE event_archive_compact RENAME TO event_archive;
ALTER TABLE event_archive ADD PRIMARY KEY (seq);
ALTER TABLE event_archive ADD CONSTRAINT event_archive_identity UNIQUE (identity);
