-- Fair, age-ordered derive (issue 10): every queue mark carries its arrival order, and a
-- derive pass claims the keys whose first mark is oldest, whatever the key sorts as.
ALTER TABLE dirty_persons ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX dirty_persons_by_seq ON dirty_persons (seq);
ALTER TABLE dirty_devices ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX dirty_devices_by_seq ON dirty_devices (seq);

-- Time-driven changes by schedule, not rescan (issue 10): when each person's view next
-- changes with no new facts (tenure/domain/schedule.py); NULL = never. Advancing the
-- watermark re-derives exactly the rows whose time has come. Rows derived before this
-- migration have no schedule yet: they come due at once and are re-derived a last time.
ALTER TABLE persons ADD COLUMN next_change_at timestamptz;
UPDATE persons SET next_change_at = as_of;
CREATE INDEX persons_by_next_change ON persons (next_change_at) WHERE next_change_at IS NOT NULL;
