-- A transaction that queues keys for the derive stage notifies `tenure_derive_queue` when it
-- commits (one notification per transaction: Postgres folds identical ones), so a derive
-- stage in another process (`tenure worker projector --stages derive`) wakes at once instead
-- of polling the queue (tenure/storage/derive_queue.py, QueueListener).

CREATE FUNCTION notify_derive_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM queued) THEN  -- an INSERT of no rows (nothing came due) is silent
        PERFORM pg_notify('tenure_derive_queue', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER dirty_persons_notify AFTER INSERT ON dirty_persons
    REFERENCING NEW TABLE AS queued
    FOR EACH STATEMENT EXECUTE FUNCTION notify_derive_queue();

CREATE TRIGGER dirty_devices_notify AFTER INSERT ON dirty_devices
    REFERENCING NEW TABLE AS queued
    FOR EACH STATEMENT EXECUTE FUNCTION notify_derive_queue();
