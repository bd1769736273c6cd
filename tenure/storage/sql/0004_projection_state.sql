-- State of the live lifecycle projection. Raw states are plain merges of events per key
-- (join-semilattices, encoded by tenure.domain.codec); everything else is derived from them.

CREATE TABLE raw_device_states (
    device_id text PRIMARY KEY,
    state     jsonb NOT NULL
);

CREATE TABLE raw_person_states (
    person_id text PRIMARY KEY,
    state     jsonb NOT NULL
);

-- Identity links, stored both ways so a component is found with one recursive query.
CREATE TABLE identity_links (
    person_id text NOT NULL,
    other_id  text NOT NULL,
    PRIMARY KEY (person_id, other_id)
);

-- Which devices mention which person ids (activations, named uses, payer, beneficiary).
CREATE TABLE device_mentions (
    person_id text NOT NULL,
    device_id text NOT NULL,
    PRIMARY KEY (person_id, device_id)
);

-- Work queues of the derive stage: humans and devices whose view must be derived again.
CREATE TABLE dirty_persons (person_id text PRIMARY KEY);
CREATE TABLE dirty_devices (device_id text PRIMARY KEY);

-- Latest event time seen per input partition; the watermark is their maximum less the
-- allowed lateness.
CREATE TABLE projection_progress (
    topic            text NOT NULL,
    kafka_partition  integer NOT NULL,
    max_event_time   timestamptz NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);

-- Outbox of lifecycle transitions, published to tenure.lifecycle.transitions.v1.
CREATE TABLE lifecycle_transitions (
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    transition_id  text PRIMARY KEY,
    person_id      text NOT NULL,
    kind           text NOT NULL,
    old_value      text NOT NULL,
    new_value      text NOT NULL,
    effective_at   timestamptz NOT NULL,
    as_of          timestamptz NOT NULL,
    published_at   timestamptz
);
CREATE INDEX lifecycle_transitions_unpublished ON lifecycle_transitions (seq)
    WHERE published_at IS NULL;

-- How much the live projection knew when it derived a row (the size of the row's raw
-- neighbourhood). Rows are only overwritten by derivations that knew at least as much,
-- as of an instant at least as late: updates only move forward.
ALTER TABLE persons ADD COLUMN basis bigint NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN basis bigint NOT NULL DEFAULT 0;
