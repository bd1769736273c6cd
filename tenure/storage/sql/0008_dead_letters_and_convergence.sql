-- Dead letters an operator can list and re-drive, and the projection's convergence checkpoint.

-- Every record a stage could not process, with the reason (the dead-letter topic holds the
-- same records; this table is what `tenure deadletters list|redrive` reads). One row per
-- stage and origin: a record dead-lettered again (redelivered after a crash, or re-driven
-- and failing again) counts another occurrence. `payload` is the original record value
-- (any bytes); `envelope` is the same as jsonb when it is a JSON document Postgres can hold
-- (the erasure purge finds person ids there and in `payload`).
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stage           text NOT NULL,
    category        text NOT NULL,
    reason          text NOT NULL,
    field           text NOT NULL DEFAULT '',
    origin          text NOT NULL,
    topic           text,
    kafka_partition integer,
    kafka_offset    bigint,
    archive_seq     bigint,
    record_key      bytea,
    payload         bytea NOT NULL,
    envelope        jsonb,
    occurrences     integer NOT NULL DEFAULT 1,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    redriven_at     timestamptz,
    redrive_count   integer NOT NULL DEFAULT 0
);
-- md5: an origin may name a key of any length (a derive dead letter names its person).
CREATE UNIQUE INDEX dead_letters_once ON dead_letters (stage, md5(origin));
CREATE INDEX dead_letters_pending ON dead_letters (stage, id) WHERE redriven_at IS NULL;

-- Up to which event_archive.seq the raw states are known to hold every archived event
-- (applied, or dead-lettered by the projection). Advanced by the convergence pass (which
-- re-applies the archive after it) and by the projector's verification pass.
CREATE TABLE projection_convergence (
    projection   text PRIMARY KEY,
    archive_seq  bigint NOT NULL,
    advanced_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_convergence (projection, archive_seq) VALUES ('raw_states', 0);

-- The next Kafka offset per input partition below which the projector has applied (or
-- dead-lettered) every record, in the current broker's numbering: the verification pass
-- compares archive rows' offsets with it. Cleared by the convergence pass (a restarted
-- embedded broker numbers its records from 0 again).
ALTER TABLE projection_progress ADD COLUMN applied_offset bigint;
