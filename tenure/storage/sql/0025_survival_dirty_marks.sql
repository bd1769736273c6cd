-- survival_dirty becomes a queue of marks, as dirty_persons and dirty_devices are (0013):
-- append-only, a mark per change, each with its arrival number `seq`; the aggregates stage
-- claims the persons queued longest with every mark of theirs (derive_queue.claim_oldest).
-- With a primary key, the persons upsert's trigger (INSERT ... ON CONFLICT DO NOTHING) had to
-- wait for any open drain transaction that had claimed the same person: at the freshness
-- benchmark's full rate a derive pass waited on such locks for ~18% of its time.

ALTER TABLE survival_dirty DROP CONSTRAINT survival_dirty_pkey;
ALTER TABLE survival_dirty ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX survival_dirty_by_person ON survival_dirty (person_id);
CREATE INDEX survival_dirty_by_seq ON survival_dirty (seq);

CREATE OR REPLACE FUNCTION survival_mark_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survival_dirty (person_id) SELECT person_id FROM survival_new_rows;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION survival_mark_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survival_dirty (person_id)
    SELECT n.person_id FROM survival_new_rows n JOIN survival_old_rows o USING (person_id)
    WHERE (o.segment, o.stage, o.level, o.tier, o.entry_path, o.products,
           o.first_engagement_at, o.last_engagement_at, o.tenure_days, o.cohort_week,
           o.engaged_weeks, o.first_paid_order_at, o.second_paid_order_at, o.first_use_at,
           o.device_activation_at)
          IS DISTINCT FROM
          (n.segment, n.stage, n.level, n.tier, n.entry_path, n.products,
           n.first_engagement_at, n.last_engagement_at, n.tenure_days, n.cohort_week,
           n.engaged_weeks, n.first_paid_order_at, n.second_paid_order_at, n.first_use_at,
           n.device_activation_at);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION survival_mark_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survival_dirty (person_id) SELECT person_id FROM survival_old_rows;
    RETURN NULL;
END $$;
