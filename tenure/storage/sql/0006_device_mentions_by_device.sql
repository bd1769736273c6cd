-- The projector looks mentions up by device too (who must be derived again when a device
-- changes; a device's neighbourhood): without this index each lookup scans the table.
CREATE INDEX device_mentions_by_device ON device_mentions (device_id, person_id);
