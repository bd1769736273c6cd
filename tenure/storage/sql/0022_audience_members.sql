-- Live audience membership (issue 14; docs/audiences.md, "Live membership").
--
-- The projector's audience stage (tenure/projection/audiences.py) follows the persons change
-- feed and keeps, per audience, who is in it (`audience_members`) and who left it
-- (`audience_exits`). Both are followed like `persons`/`person_removals` (migration 0019):
-- each row records the transaction that last wrote it (`changed_xid`, stamped by a trigger on
-- every insert and update) and readers serve only changes below the oldest running
-- transaction, with the cursor (audience, changed_xid, person_id). An entry forgets the
-- person's exit row and an exit deletes the member row, in the stage's transaction.
CREATE TABLE audience_members (
    audience text NOT NULL,
    person_id text NOT NULL,
    version int NOT NULL,
    entered_at timestamptz NOT NULL,
    suppressed text NULL,
    changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (audience, person_id)
);
CREATE INDEX audience_members_by_change ON audience_members (audience, changed_xid, person_id);

CREATE TABLE audience_exits (
    audience text NOT NULL,
    person_id text NOT NULL,
    exited_at timestamptz,
    changed_xid xid8 DEFAULT pg_current_xact_id(),
    PRIMARY KEY (audience, person_id)
);
CREATE INDEX audience_exits_by_change ON audience_exits (audience, changed_xid, person_id);

CREATE FUNCTION audience_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END $$;
CREATE TRIGGER audience_members_change_stamped BEFORE INSERT OR UPDATE ON audience_members
    FOR EACH ROW EXECUTE FUNCTION audience_stamp_change();
CREATE TRIGGER audience_exits_change_stamped BEFORE INSERT OR UPDATE ON audience_exits
    FOR EACH ROW EXECUTE FUNCTION audience_stamp_change();

-- How far each audience (at one definition version) has followed the persons change feed.
-- A new version starts again at the beginning: its one pass over everyone is its backfill.
CREATE TABLE audience_positions (
    audience text PRIMARY KEY,
    version int NOT NULL,
    xid xid8 NOT NULL DEFAULT '0',
    person_id text NOT NULL DEFAULT ''
);

-- When a person's membership of some audience next changes with no new facts and no new
-- persons row (a time term of a filter, a quiet period ending, the churn risk's next day):
-- the earliest such instant over the audiences. A watermark that reaches it re-evaluates
-- the person, and no one else.
CREATE TABLE audience_due (
    person_id text PRIMARY KEY,
    due_at timestamptz NOT NULL
);
CREATE INDEX audience_due_by_time ON audience_due (due_at, person_id);

-- The last contact of a person for an audience: the instant they last became a contactable
-- (not suppressed) member of it. The audience's quiet period counts from it, across exits
-- and re-entries.
CREATE TABLE audience_contacts (
    audience text NOT NULL,
    person_id text NOT NULL,
    contacted_at timestamptz NOT NULL,
    PRIMARY KEY (audience, person_id)
);
CREATE INDEX audience_contacts_by_person ON audience_contacts (person_id);

-- The outbox of membership changes, published to `tenure.audiences.v1` after commit
-- (deterministic event ids: a re-published change keeps its id).
CREATE TABLE audience_changes (
    seq bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    audience text NOT NULL,
    version int NOT NULL,
    person_id text NOT NULL,
    kind text NOT NULL,
    suppressed text NULL,
    at timestamptz NOT NULL,
    published_at timestamptz NULL
);
CREATE INDEX audience_changes_unpublished ON audience_changes (seq) WHERE published_at IS NULL;
CREATE INDEX audience_changes_by_person ON audience_changes (person_id);
CREATE INDEX audience_members_by_person ON audience_members (person_id);

-- The first hardware meant for the person (bought for themself, or a gift naming them):
-- what an audience whose contact is `gift_recipient_else_payer` counts days since purchase
-- from (PersonView.intended_hardware_at). Stored for the audience stage, which evaluates the
-- stored rows; not shown by the persons API. Rows derived before this migration hold NULL
-- until they are derived again (`tenure replay` fills every row).
ALTER TABLE persons ADD COLUMN intended_hardware_at timestamptz;
