-- Live survival aggregates (docs/metrics.md, "Live aggregates"). The persons row is the
-- source of truth; triggers queue changed persons in survival_dirty and the aggregates stage
-- (tenure.analytics.live) moves each person's contribution from its old cells to its new
-- ones in one transaction. Every aggregate is a plain count `n` keyed by its cell.

-- What the survival analytics need from a person, added to the read model.
ALTER TABLE persons
    ADD COLUMN entry_path text,
    ADD COLUMN first_use_at timestamptz,
    ADD COLUMN device_activation_at timestamptz,
    ADD COLUMN products text[] NOT NULL DEFAULT '{}',
    ADD COLUMN cohort_week date,
    ADD COLUMN engaged_weeks integer[] NOT NULL DEFAULT '{}';

-- Persons whose contribution must be recomputed (filled by triggers on persons).
CREATE TABLE survival_dirty (person_id text PRIMARY KEY);

-- Each person's contribution as last added to the aggregates (removed before re-adding).
CREATE TABLE survival_contributions (
    person_id         text PRIMARY KEY,
    groups            text[] NOT NULL,   -- 'all', 'entry:..', 'segment:..', ..., 'cohort:..'
    tenure_days       integer,           -- last - first engagement, UTC days (NULL: none)
    last_day          date,              -- UTC day of the last engagement
    churned           boolean,           -- stage 'churned' when the row was derived
    activation_start  date,              -- buyers: first paid order day
    activation_day    date,              -- ... first activation / first use of a paid device
    conversion_start  date,              -- non-paying users: first device use day
    conversion_day    date,              -- ... first paid order day
    repeat_start      date,              -- customers: first paid order day
    repeat_day        date,              -- ... second paid order day
    cohort_week       date,              -- Monday of the first engagement week
    engaged_weeks     integer[] NOT NULL -- weeks since cohort_week with an engagement
);

-- Tenure of people already churned when derived: they stay churned at any later as-of.
CREATE TABLE survival_tenure_closed (
    group_key     text NOT NULL,
    duration_day  integer NOT NULL,
    n             bigint NOT NULL,
    PRIMARY KEY (group_key, duration_day)
);

-- Tenure of people not churned when derived, by last engagement day: at as-of day T they
-- count as events if last_day <= T - W, else as censored (both at duration_day).
CREATE TABLE survival_tenure_open (
    group_key     text NOT NULL,
    duration_day  integer NOT NULL,
    last_day      date NOT NULL,
    n             bigint NOT NULL,
    PRIMARY KEY (group_key, duration_day, last_day)
);

-- The tenure life table at the UTC day of survival_state.as_of: what the default queries,
-- the gauges and Grafana read (one row per group and duration day).
CREATE TABLE survival_tenure_now (
    group_key     text NOT NULL,
    duration_day  integer NOT NULL,
    events        bigint NOT NULL,
    censored      bigint NOT NULL,
    PRIMARY KEY (group_key, duration_day)
);

-- Time-to-milestone (kind: activation, conversion, repeat): reached at duration_day ...
CREATE TABLE milestone_events (
    kind          text NOT NULL,
    group_key     text NOT NULL,
    duration_day  integer NOT NULL,
    n             bigint NOT NULL,
    PRIMARY KEY (kind, group_key, duration_day)
);

-- ... or not yet, by start day: censored at (as-of day - start_day) at query time.
CREATE TABLE milestone_pending (
    kind       text NOT NULL,
    group_key  text NOT NULL,
    start_day  date NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (kind, group_key, start_day)
);

-- Weekly cohort retention: cohort sizes, people engaged in week k, people whose last
-- engaged week is k ("on or after week k" = sum of retention_last over weeks >= k).
CREATE TABLE retention_cohorts (
    group_key    text NOT NULL,
    cohort_week  date NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (group_key, cohort_week)
);
CREATE TABLE retention_on (
    group_key    text NOT NULL,
    cohort_week  date NOT NULL,
    week         integer NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (group_key, cohort_week, week)
);
CREATE TABLE retention_last (
    group_key    text NOT NULL,
    cohort_week  date NOT NULL,
    week         integer NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (group_key, cohort_week, week)
);

-- The instant the aggregates are read at by default (the projection watermark when the
-- stage last ran) and the churn window W they use.
CREATE TABLE survival_state (
    id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
    as_of              timestamptz,
    churn_window_days  integer NOT NULL DEFAULT 30
);
INSERT INTO survival_state (id) VALUES (true);

-- Queue persons whose survival-relevant columns changed (a new as_of alone does not count).
CREATE FUNCTION survival_mark_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survival_dirty (person_id)
    SELECT person_id FROM survival_new_rows ORDER BY person_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION survival_mark_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survival_dirty (person_id)
    SELECT n.person_id FROM survival_new_rows n JOIN survival_old_rows o USING (person_id)
    WHERE (o.segment, o.stage, o.level, o.tier, o.entry_path, o.products,
           o.first_engagement_at, o.last_engagement_at, o.tenure_days, o.cohort_week,
           o.engaged_weeks, o.first_paid_order_at, o.second_paid_order_at, o.first_use_at,
           o.device_activation_at)
          IS DISTINCT FROM
          (n.segment, n.stage, n.level, n.tier, n.entry_path, n.products,
           n.first_engagement_at, n.last_engagement_at, n.tenure_days, n.cohort_week,
           n.engaged_weeks, n.first_paid_order_at, n.second_paid_order_at, n.first_use_at,
           n.device_activation_at)
    ORDER BY n.person_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION survival_mark_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survival_dirty (person_id)
    SELECT person_id FROM survival_old_rows ORDER BY person_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- (Re)install the statement-level triggers on the current persons table; `tenure replay`
-- calls it after swapping a fresh persons table in.
CREATE FUNCTION survival_install_triggers() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP TRIGGER IF EXISTS persons_survival_inserted ON persons;
    DROP TRIGGER IF EXISTS persons_survival_updated ON persons;
    DROP TRIGGER IF EXISTS persons_survival_deleted ON persons;
    CREATE TRIGGER persons_survival_inserted AFTER INSERT ON persons
        REFERENCING NEW TABLE AS survival_new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION survival_mark_inserted();
    CREATE TRIGGER persons_survival_updated AFTER UPDATE ON persons
        REFERENCING OLD TABLE AS survival_old_rows NEW TABLE AS survival_new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION survival_mark_updated();
    CREATE TRIGGER persons_survival_deleted AFTER DELETE ON persons
        REFERENCING OLD TABLE AS survival_old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION survival_mark_deleted();
END $$;
SELECT survival_install_triggers();

-- Rows derived before this migration lack the new columns: derive them again, and give
-- every existing person a contribution.
INSERT INTO dirty_persons SELECT person_id FROM persons ON CONFLICT DO NOTHING;
INSERT INTO survival_dirty SELECT person_id FROM persons ON CONFLICT DO NOTHING;

-- Grafana: tenure life table as of survival_state.as_of (events and censorings per day).
CREATE VIEW survival_counts AS
WITH s AS (SELECT (as_of AT TIME ZONE 'UTC')::date - churn_window_days AS churned_by FROM survival_state)
SELECT group_key, duration_day, sum(events)::bigint AS events, sum(censored)::bigint AS censored
FROM (
    SELECT group_key, duration_day, n AS events, 0 AS censored FROM survival_tenure_closed
    UNION ALL
    SELECT o.group_key, o.duration_day,
           CASE WHEN o.last_day <= s.churned_by THEN o.n ELSE 0 END,
           CASE WHEN o.last_day <= s.churned_by THEN 0 ELSE o.n END
    FROM survival_tenure_open o CROSS JOIN s
) c
GROUP BY group_key, duration_day;

-- Grafana: people per group reaching each milestone (count) out of those started (n).
CREATE VIEW milestone_counts AS
SELECT kind, group_key, sum(reached + pending)::bigint AS n, sum(reached)::bigint AS count
FROM (
    SELECT kind, group_key, n AS reached, 0 AS pending FROM milestone_events
    UNION ALL
    SELECT kind, group_key, 0, n FROM milestone_pending
) c
GROUP BY kind, group_key;

-- Grafana: weekly cohort retention matrix as of survival_state.as_of.
CREATE VIEW retention_matrix AS
SELECT c.group_key, c.cohort_week, w.week, c.n AS size,
       coalesce(o.n, 0)::bigint AS on_count,
       coalesce((SELECT sum(l.n) FROM retention_last l
                 WHERE l.group_key = c.group_key AND l.cohort_week = c.cohort_week
                   AND l.week >= w.week), 0)::bigint AS on_or_after_count,
       coalesce(o.n, 0)::double precision / c.n AS on_share,
       coalesce((SELECT sum(l.n) FROM retention_last l
                 WHERE l.group_key = c.group_key AND l.cohort_week = c.cohort_week
                   AND l.week >= w.week), 0)::double precision / c.n AS on_or_after_share
FROM retention_cohorts c
CROSS JOIN survival_state s
CROSS JOIN LATERAL generate_series(0, greatest(0, ((s.as_of AT TIME ZONE 'UTC')::date - c.cohort_week) / 7)) AS w(week)
LEFT JOIN retention_on o
    ON o.group_key = c.group_key AND o.cohort_week = c.cohort_week AND o.week = w.week
WHERE c.n > 0;
