-- Issue 15: `churn_risk` is the churn probability, P(no engagement in the next W days),
-- computed at read time from the person's inputs (`churn_inputs`: silence and return-time
-- bucket) and the live return-time model at the read's as_of (docs/lifecycle.md, "Churn
-- risk"). The stored hand-tuned logistic score and its own inputs are retired: nothing reads
-- them any more, and a stored number named churn_risk would be mistaken for the risk.
ALTER TABLE persons DROP COLUMN churn_risk;
UPDATE persons SET churn_inputs = churn_inputs - 'usual_gap_days' - 'ratio'
WHERE churn_inputs ? 'usual_gap_days' OR churn_inputs ? 'ratio';

-- The version of the return-time counts: a new random value in every transaction that
-- changes them (tenure.analytics.live.churn_model), so a reader can reuse the model it
-- fitted from the same counts at the same as-of instead of refitting on every request.
CREATE TABLE churn_model_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO churn_model_version DEFAULT VALUES;
