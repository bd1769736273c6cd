-- Live return-time counts of the churn probability (docs/lifecycle.md, "Churn probability").
-- Each person's gaps between engagement days are filed under a return-time bucket
-- (group/rhythm/experience, tenure.analytics.return_times); the counts are a commutative
-- group: moving a person from their old filing to the new one subtracts and adds counts.

-- Each person's engagement days and group as last added (their filing is recomputed from
-- them to be removed before re-adding, or when the person is erased). The days also feed
-- the calibration backtest (the same person's days, cut at an earlier as-of).
CREATE TABLE churn_gap_contributions (
    person_id text PRIMARY KEY,
    grp       text NOT NULL,
    days      date[] NOT NULL
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

-- People the derive pass derived, waiting for the aggregates stage to move their filing
-- (days NULL: forget the person). The last queued days win.
CREATE TABLE churn_pending (
    person_id text PRIMARY KEY,
    grp       text NOT NULL,
    days      date[]
);
