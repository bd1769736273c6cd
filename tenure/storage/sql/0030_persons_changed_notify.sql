-- A transaction that writes or deletes `persons` rows notifies `tenure_persons_changed` when it
-- commits (one notification per transaction: Postgres folds identical ones), so the
-- projector's followers in a process of their own (`tenure worker projector --stages
-- follow`: publishing transitions, the persons topic, the audience and aggregates stages)
-- wake at once instead of polling (tenure/storage/notifications.py). A statement that
-- changed no row is silent. The persons table is merged in place by `tenure replay`, never
-- dropped, so the triggers stay.

CREATE FUNCTION notify_persons_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        PERFORM pg_notify('tenure_persons_changed', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER persons_inserted_notify AFTER INSERT ON persons
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_persons_changed();

CREATE TRIGGER persons_updated_notify AFTER UPDATE ON persons
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_persons_changed();

CREATE TRIGGER persons_deleted_notify AFTER DELETE ON persons
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_persons_changed();
