-- Issue 15: `churn_risk` is the churn probability, P(no engagement in the next W days),
-- computed at read time from the person's inputs (`churn_inputs`: silence and return-time
-- bucket) and the live return-time model at the read's as_of (docs/lifecycle.md, "Churn
-- risk"). The stored hand-tuned logistic score and its own inputs are retired: nothing reads
-- them any more, and a stored number named churn_risk would be mistaken for the risk.
ALTER TABLE persons DROP COLUMN churn_risk;
UPDATE persons SET churn_inputs = churn_inputs - 'usual_gap_days' - 'ratio'
WHERE churn_inputs ? 'usual_gap_days' OR churn_inputs ? 'ratio';
