-- Audiences (docs/audiences.md): named, versioned definitions of who to reach, on which
-- channel, how rarely. Every change is a new version (a row); the current definition of a
-- name is its highest version, retired when that row's retired_at is set. `source` says
-- where the version came from: the file shipped in the package (tenure/domain/audiences.json,
-- seeded at every migrate, a new version only when the file's document changed) or the API
-- (`PUT /v1/audiences/{name}`, scope 'audiences:write').
CREATE TABLE audience_definitions (
    name text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    definition jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('file', 'api')),
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    PRIMARY KEY (name, version)
);

-- Tokens that may create, change and retire audiences (the query API's write routes).
ALTER TABLE producer_tokens DROP CONSTRAINT producer_tokens_scope_check;
ALTER TABLE producer_tokens ADD CONSTRAINT producer_tokens_scope_check
    CHECK (scope IN ('ingest', 'read', 'audiences:write'));
