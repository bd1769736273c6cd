"""Tenure: an event-sourced user-lifecycle platform for makers of connected products."""

__version__ = "0.1.0"
