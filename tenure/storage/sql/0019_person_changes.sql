-- Following person state incrementally (docs/projection.md, "Following persons"):
-- `GET /v1/persons?updated_since=` pages through persons in change order.
--
-- Each persons row records the transaction that last wrote it (`changed_xid`, set by a
-- trigger on every insert and update, whoever writes: derive, erasure, replay). A deleted
-- person leaves a removal row (a merged alias: its id; an erasure renames it to the
-- person's token, as it renames every other table). Readers serve only changes of
-- transactions below the oldest one still running (`pg_snapshot_xmin`): those are final,
-- and no later transaction can ever write a smaller xid, so a cursor never skips a change
-- that commits late (the commit-order gap of a plain sequence).
-- Nullable on purpose: staging tables made `LIKE persons` (derive's upsert) copy NOT NULL
-- but not the default; the trigger below stamps every row that reaches persons.
ALTER TABLE persons ADD COLUMN changed_xid xid8 DEFAULT pg_current_xact_id();
CREATE INDEX persons_by_change ON persons (changed_xid, person_id);

CREATE TABLE person_removals (
    person_id text PRIMARY KEY,
    changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX person_removals_by_change ON person_removals (changed_xid, person_id);

CREATE FUNCTION persons_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END $$;
CREATE TRIGGER persons_change_stamped BEFORE INSERT OR UPDATE ON persons
    FOR EACH ROW EXECUTE FUNCTION persons_stamp_change();

CREATE FUNCTION persons_record_removals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO person_removals (person_id)
        SELECT person_id FROM person_removed_rows
        ON CONFLICT (person_id) DO UPDATE SET changed_xid = pg_current_xact_id();
    RETURN NULL;
END $$;
CREATE TRIGGER persons_removals_recorded AFTER DELETE ON persons
    REFERENCING OLD TABLE AS person_removed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION persons_record_removals();

-- A person that comes back (derived again after a removal) is no longer removed.
CREATE FUNCTION persons_forget_removals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM person_removals r USING person_added_rows a WHERE r.person_id = a.person_id;
    RETURN NULL;
END $$;
CREATE TRIGGER persons_removals_forgotten AFTER INSERT ON persons
    REFERENCING NEW TABLE AS person_added_rows
    FOR EACH STATEMENT EXECUTE FUNCTION persons_forget_removals();

-- How far the projector has published the change feed to `tenure.persons.v1`
-- (tenure/projection/person_topic.py): one row, moved only after the broker acknowledged.
CREATE TABLE person_topic_position (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    xid xid8 NOT NULL DEFAULT '0',
    person_id text NOT NULL DEFAULT ''
);
INSERT INTO person_topic_position DEFAULT VALUES;
