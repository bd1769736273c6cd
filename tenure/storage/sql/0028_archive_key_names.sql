-- What `tenure replay` plans from without reading every archived payload (issue 10, item 6;
-- docs/design/replay-cost.md, "Session 12").
--
-- The replay's plan cuts the archive into parts of independent persons: the connected
-- components of "keys one event names" (its record key, its devices, its person ids or
-- tokens). It used to inflate and decode every payload for them. Now the archive's one
-- writer (tenure/storage/archive.py: append) records, in the same transaction as the rows:
-- - archive_key_names: each distinct (record key, device or person) an event under that
--   record key names: about one row per device and person pair, not per event;
-- - archive_latest: per topic and partition, the latest event time among events of known
--   types (the instant every part is derived at; the replay checks it against its fold);
-- - event_archive.keys_named: true on the rows it recorded. Rows archived before this
--   migration (or by an older writer during an upgrade) stay NULL: the plan reads their
--   payloads, as before.

-- Byte order ("C"): the key is only ever matched for equality, and the archiver checks it for
-- every distinct name of every batch.
CREATE TABLE archive_key_names (
    record_key text COLLATE "C" NOT NULL,
    kind       "char" NOT NULL,  -- 'd': a device id, 'p': a person id or token
    name       text COLLATE "C" NOT NULL,
    PRIMARY KEY (record_key, kind, name)
);

CREATE TABLE archive_latest (
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    latest_event_at timestamptz NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);

ALTER TABLE event_archive ADD COLUMN keys_named boolean;
