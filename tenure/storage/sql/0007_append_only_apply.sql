-- Append-only writes for the apply stage: raw states as a log of deltas (merge on read,
-- compacted in the background) and derive queues without a uniqueness check.
--
-- The apply stage appends each batch's per-key fold (a join-semilattice state holding only
-- that batch's facts) without reading or locking the key's state; a key's raw state is
-- the join of its compacted row (raw_device_states / raw_person_states) and its deltas.
-- Compaction joins deltas into the compacted rows and deletes them in one transaction, so
-- every snapshot sees the same joined state before and after it.

-- Deltas are written and read only as whole documents (the codec's canonical JSON), so
-- they are kept as text: no jsonb parse on the hot path.
CREATE TABLE raw_device_deltas (
    device_id text NOT NULL,
    state     text NOT NULL
);
CREATE INDEX raw_device_deltas_by_device ON raw_device_deltas (device_id);

CREATE TABLE raw_person_deltas (
    person_id text NOT NULL,
    state     text NOT NULL
);
CREATE INDEX raw_person_deltas_by_person ON raw_person_deltas (person_id);

-- The derive queues become append-only too: the apply stage inserts a mark per key and
-- batch without looking for an existing one (no conflict check, no row lock), and a derive
-- pass claims every mark of the keys it takes that its snapshot sees; marks committed
-- after the snapshot stay queued.
ALTER TABLE dirty_persons DROP CONSTRAINT dirty_persons_pkey;
CREATE INDEX dirty_persons_by_person ON dirty_persons (person_id);
ALTER TABLE dirty_devices DROP CONSTRAINT dirty_devices_pkey;
CREATE INDEX dirty_devices_by_device ON dirty_devices (device_id);
