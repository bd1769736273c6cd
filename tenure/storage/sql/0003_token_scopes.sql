-- Tokens carry a scope: 'ingest' (send events) or 'read' (query the projections).
ALTER TABLE producer_tokens ADD COLUMN scope text NOT NULL DEFAULT 'ingest'
    CHECK (scope IN ('ingest', 'read'));
