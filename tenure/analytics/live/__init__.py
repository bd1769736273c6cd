"""Live survival aggregates: per-person contributions kept as counts in Postgres.

``contribution`` is pure (row -> contribution -> cells -> deltas); ``store`` is the
aggregates stage and the from-scratch rebuild; ``reader`` turns the aggregates into life
tables and cohort rows as of an instant.
"""
