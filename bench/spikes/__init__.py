"""Throw-away measurements that inform a design decision (see ``docs/design/``)."""
