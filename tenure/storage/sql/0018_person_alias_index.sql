-- Finding a person by an alias (an id merged into a canonical person) without scanning
-- `persons`: `GET /v1/persons/{id}` with an alias took ~216 ms at 1M persons as a
-- sequential scan of `id = ANY(aliases)`; a GIN index answers `aliases @> ARRAY[id]`.
-- `tenure replay` builds its fresh table `LIKE persons INCLUDING ALL`, so it keeps the index.
CREATE INDEX persons_by_alias ON persons USING gin (aliases);
