-- Current consent per channel on the person view (issue 14): a JSON object such as
-- {"email": true, "sms": false}, from `person.consent_changed` facts, last writer by event
-- time per channel (docs/lifecycle.md, "Consent"). A channel absent from the object was never
-- spoken of: not granted. Every person had no consent facts before this event type, so '{}'
-- is the right value for existing rows; the projector and `tenure replay` fill it.
ALTER TABLE persons ADD COLUMN consent jsonb NOT NULL DEFAULT '{}';
