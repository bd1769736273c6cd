"""Waking a stage in another process when Postgres data it follows changed (``LISTEN``).

Two channels, each notified by triggers at the commit of a transaction that changed what a
stage follows (Postgres folds identical notifications: one per transaction):

- :data:`DERIVE_QUEUE` (migration 0024): keys were queued for the derive stage;
- :data:`PERSONS_CHANGED` (migration 0030): ``persons`` rows were written or deleted (by a
  derive pass, an erasure or a replay), so the followers (publishing transitions, the
  persons topic, the audience and aggregates stages) have work.

A stage in the same process as the writer is woken in-process and needs neither.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

DERIVE_QUEUE = "tenure_derive_queue"
"""Notified by every transaction that queues keys for the derive stage, at its commit."""
PERSONS_CHANGED = "tenure_persons_changed"
"""Notified by every transaction that wrote or deleted ``persons`` rows, at its commit."""


class ChannelListener:
    """Waits for a notification on ``channel``, on a connection of its own that ``LISTEN``s.

    A lost connection is made again on the next wait; meanwhile a wait returns after its
    timeout, so the caller falls back to polling.
    """

    def __init__(self, conninfo: str, channel: str, connect_timeout_s: float = 5.0) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None

    def _listening(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(
                self.conninfo, autocommit=True, connect_timeout=int(self.connect_timeout_s)
            )
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self._conn = conn
        return self._conn

    def wait(self, timeout_s: float) -> bool:
        """Block until a notification comes (True) or ``timeout_s`` passes (False). One that
        came while nobody waited wakes the next wait at once."""
        started = time.monotonic()
        try:
            conn = self._listening()
            for _ in conn.notifies(timeout=timeout_s, stop_after=1):
                return True
        except psycopg.OperationalError:
            self.close()  # made again on the next wait
            time.sleep(max(0.0, timeout_s - (time.monotonic() - started)))
        return False

    def close(self) -> None:
        """Stop listening."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
