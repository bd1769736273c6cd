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

-- The triggers' functions (0005) are unchanged: their `ON CONFLICT DO NOTHING` has no unique
-- index left to check, so each change appends a mark and never waits.
