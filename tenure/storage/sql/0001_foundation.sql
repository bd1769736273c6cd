-- Tenure foundation: producer tokens, the ingest ledger and the durable event archive.

CREATE TABLE producer_tokens (
    token_id    text PRIMARY KEY,
    producer    text NOT NULL,
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- One row per (source, id) the ingest service ever accepted. Claimed inside the transaction
-- that waits for the broker's acknowledgement, so a concurrent duplicate waits and then sees
-- it. The envelope is kept so that events acknowledged to a producer but lost by a broker
-- (the memory-only embedded one) can be published again.
CREATE TABLE ingest_ledger (
    source      text NOT NULL,
    event_id    text NOT NULL,
    event_type  text NOT NULL,
    topic       text NOT NULL,
    record_key  text NOT NULL,
    envelope    jsonb NOT NULL,
    producer    text NOT NULL,
    ingested_at timestamptz NOT NULL,
    PRIMARY KEY (source, event_id)
);

-- The durable archive: every accepted event exactly once, in arrival order (seq). Replay reads it.
CREATE TABLE event_archive (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    event_time   timestamptz NOT NULL,
    record_key   text NOT NULL,
    envelope     jsonb NOT NULL,
    ingested_at  timestamptz,
    topic        text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_archive_identity UNIQUE (source, event_id)
);

CREATE INDEX event_archive_type_time ON event_archive (event_type, event_time);
