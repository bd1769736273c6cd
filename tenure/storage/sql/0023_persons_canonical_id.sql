-- The canonical-id rule, written beside the table it keys (docs/lifecycle.md section 3).

COMMENT ON TABLE persons IS
    'One row per human: the ids linked by identity.linked events (a connected component) '
    'resolved to one person, as of an event-time instant. Keyed by the canonical id: the '
    'smallest id of the component (text order), whatever order the links arrived in.';

COMMENT ON COLUMN persons.person_id IS
    'The canonical id: the smallest (text order) of the linked ids of this human. A new link '
    'to a smaller id moves the row to that id.';

COMMENT ON COLUMN persons.aliases IS
    'Every id linked to this human, the canonical person_id included.';
