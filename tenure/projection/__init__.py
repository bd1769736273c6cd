"""Projections from the event log to read models: the batch replay (and, next, the stream)."""
