-- The transitions outbox is followed from a position, as the persons topic is
-- (tenure/storage/transitions_outbox.py): publishing no longer updates every row it sends.
-- Each row records the transaction that wrote it; the relay pages in (written_xid, seq)
-- order below the oldest running transaction.
ALTER TABLE lifecycle_transitions ADD COLUMN written_xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE lifecycle_transitions ALTER COLUMN written_xid SET DEFAULT pg_current_xact_id();

-- How far the relay has published (one row, moved only after the broker acknowledged).
-- Rows written before this migration keep xid 0, so the relay starts just before the oldest
-- unpublished one; published rows after it go out again, with the same ids (at least once,
-- as after a crash between publishing and marking).
CREATE TABLE transitions_relay_position (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    xid xid8 NOT NULL DEFAULT '0',
    seq bigint NOT NULL DEFAULT 0
);
INSERT INTO transitions_relay_position (seq)
SELECT coalesce(
    (SELECT min(seq) - 1 FROM lifecycle_transitions WHERE published_at IS NULL),
    (SELECT max(seq) FROM lifecycle_transitions),
    0);

DROP INDEX lifecycle_transitions_unpublished;
ALTER TABLE lifecycle_transitions DROP COLUMN published_at;
CREATE INDEX lifecycle_transitions_in_relay_order ON lifecycle_transitions (written_xid, seq);
