-- Lifecycle read models: one row per person (canonical id) and per device, derived from the
-- event log as of an event-time instant. Rebuilt by `tenure replay` into fresh tables that
-- are swapped in atomically.

CREATE TABLE persons (
    person_id               text PRIMARY KEY,
    as_of                   timestamptz NOT NULL,
    aliases                 text[] NOT NULL,
    segment                 text NOT NULL,
    buyer_kind              text,
    is_customer             boolean NOT NULL,
    is_user                 boolean NOT NULL,
    is_sponsor              boolean NOT NULL,
    stage                   text NOT NULL,
    stage_since             timestamptz,
    level                   text NOT NULL,
    is_super_user           boolean NOT NULL,
    tier                    text NOT NULL,
    value_score             double precision NOT NULL,
    tags                    text[] NOT NULL,
    churn_risk              double precision NOT NULL,
    churn_inputs            jsonb NOT NULL,
    first_engagement_at     timestamptz,
    last_engagement_at      timestamptz,
    tenure_days             integer NOT NULL,
    active_days             integer NOT NULL,
    first_paid_order_at     timestamptz,
    second_paid_order_at    timestamptz,
    first_activation_at     timestamptz,
    activation_delay_days   double precision,
    activated_within_window boolean,
    paid_order_count        integer NOT NULL,
    net_spend_minor         jsonb NOT NULL,
    referral_count          integer NOT NULL,
    feedback_count          integer NOT NULL,
    devices_used            integer NOT NULL,
    last_fact_at            timestamptz
);
CREATE INDEX persons_segment ON persons (segment);
CREATE INDEX persons_stage ON persons (stage);
CREATE INDEX persons_level ON persons (level);
CREATE INDEX persons_tier ON persons (tier);
CREATE INDEX persons_super_users ON persons (person_id) WHERE is_super_user;

CREATE TABLE devices (
    device_id       text PRIMARY KEY,
    product         text,
    user_id         text,
    payer_id        text,
    beneficiary_id  text,
    is_sponsored    boolean NOT NULL,
    activated_at    timestamptz,
    first_use_at    timestamptz,
    last_use_at     timestamptz,
    active_days     integer NOT NULL,
    deactivated_at  timestamptz
);
CREATE INDEX devices_user ON devices (user_id);
CREATE INDEX devices_payer ON devices (payer_id);

-- Where the projections stand: the as-of instant and the archive position they reflect.
CREATE TABLE projection_checkpoints (
    projection   text PRIMARY KEY,
    as_of        timestamptz,
    archive_seq  bigint NOT NULL,
    events       bigint NOT NULL,
    rebuilt_at   timestamptz NOT NULL DEFAULT now()
);
