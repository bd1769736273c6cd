-- churn_pending becomes a queue of marks, as survival_dirty did (0025): append-only, one row
-- per queued person and derive pass with its arrival number `seq`; the last queued mark of a
-- person (highest seq) wins. The churn drain claims the persons queued longest with every
-- mark of theirs under a key lock each (derive_queue.claim_oldest). With a primary key, a
-- derive pass's upsert of a person had to wait for any open drain transaction that had
-- claimed the same person.

ALTER TABLE churn_pending DROP CONSTRAINT churn_pending_pkey;
ALTER TABLE churn_pending ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX churn_pending_by_person ON churn_pending (person_id);
CREATE INDEX churn_pending_by_seq ON churn_pending (seq);
