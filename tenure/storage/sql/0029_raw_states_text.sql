-- The compacted raw states are kept as text, not jsonb, as their deltas always were (0007).
-- They are written and read only as whole documents by the state codec
-- (tenure/domain/state_codec/), never queried inside, so jsonb's parse on every write and its
-- re-serialisation on every read (`state::text`) were pure cost: measured on 1,617 simulated
-- device states of ~2.9 kB, an upsert of them cost the server 0.09 s as jsonb and 0.06 s as
-- text, reading them back 0.03-0.04 s and 0.01-0.02 s, and the table was 8 % smaller. The
-- rows are rewritten once here; documents written as jsonb keep jsonb's text form, which the
-- codec reads as well.

ALTER TABLE raw_device_states ALTER COLUMN state TYPE text USING state::text;
ALTER TABLE raw_person_states ALTER COLUMN state TYPE text USING state::text;
