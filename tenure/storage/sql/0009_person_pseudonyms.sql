-- Erasure that holds (docs/design/erasure.md): person ids leave Tenure's publish boundary
-- (ingest, SDK validator, transitions) as tokens, '~p:' + base32(HMAC-SHA256(secret, id)).

-- The installation secret of the keyed hash: 32 random bytes, made once (gen_random_uuid
-- draws from the server's CSPRNG; each uuid carries 122 random bits).
CREATE TABLE privacy_secret (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret  bytea NOT NULL
);
INSERT INTO privacy_secret (secret) SELECT decode(
    replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''),
    'hex');

-- The vault: the only place a token is mapped back to a person id. Erasure clears the id
-- and keeps the row, so a later event about the person cannot register the id again.
CREATE TABLE person_pseudonyms (
    pseudonym  text PRIMARY KEY,
    person_id  text,
    erased_at  timestamptz,
    CHECK ((person_id IS NULL) = (erased_at IS NOT NULL))
);
CREATE INDEX person_pseudonyms_erased ON person_pseudonyms (pseudonym) WHERE person_id IS NULL;

-- The erasure generation: bumped by every purge, read by every apply transaction.
CREATE TABLE privacy_state (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    erasures  bigint NOT NULL DEFAULT 0
);
INSERT INTO privacy_state (id) VALUES (true);

-- The purge renames an erased human's ids in these columns: find them without a scan.
CREATE INDEX lifecycle_transitions_by_person ON lifecycle_transitions (person_id);
CREATE INDEX identity_links_by_other ON identity_links (other_id);
