-- Each derive-queue mark records when it was queued (`clock_timestamp()` at its insert: by
-- the apply stage's batch, a time-driven tick, a re-drive). A claim reads its keys' oldest
-- `queued_at` against the server clock, so the deriver reports how long each view waited
-- from queueing until a pass had written it (`tenure_projector_view_lag_seconds`). The
-- column is added with `now()` (stable: no row is rewritten; marks queued before this
-- migration count from it), then new marks take `clock_timestamp()`.

ALTER TABLE dirty_persons ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE dirty_persons ALTER COLUMN queued_at SET DEFAULT clock_timestamp();
ALTER TABLE dirty_devices ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE dirty_devices ALTER COLUMN queued_at SET DEFAULT clock_timestamp();
