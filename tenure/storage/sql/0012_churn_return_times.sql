-- Live return-time counts of the churn probability (docs/lifecycle.md, "Churn probability").
-- Each person's gaps between engagement days are filed under a return-time bucket
-- (group/rhythm/experience, tenure.analytics.return_times); the counts are a commutative
-- group: moving a person from their old filing to the new one subtracts and adds counts.

-- Each person's filing as last added (removed before re-adding, or when erased).
CREATE TABLE churn_gap_contributions (
    person_id   text PRIMARY KEY,
    closed      jsonb NOT NULL,  -- {bucket: {gap length in days: count}} of closed gaps
    open_bucket text,            -- bucket of the open gap (NULL: no engagement)
    open_since  date             -- its start: the last engagement day
);

-- Closed gaps: returns after `length` days, per bucket.
CREATE TABLE churn_return_counts (
    bucket text NOT NULL,
    length integer NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (bucket, length)
);

-- Open gaps per bucket and start day; their age is read at as_of (censored there).
CREATE TABLE churn_open_gaps (
    bucket text NOT NULL,
    since  date NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (bucket, since)
);
