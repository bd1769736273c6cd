"""The projector's batch handler: canonical-topic records -> raw states in Postgres.

The projector consumes with the loop every worker shares
(:class:`tenure.eventlog.batch_loop.BatchLoop`: ``getmany`` batches, offsets committed in
batch order after the write is durable, backoff while the database is away, liveness,
lag). This module says what a batch is for the projector:

- prepare: records are decoded, folded per key and encoded (CPU, overlapping the previous
  batch's write; resolving person ids may read the database);
- write: the batch's deltas and dirty queues are written in one transaction
  (``Projector.write``). A record that cannot be applied (a value the codec or Postgres
  cannot hold) is isolated and dead-lettered in that transaction, the rest applied; every
  write is a merge, so a batch delivered again is harmless;
- committed: counted (``tenure_projector_records_total``, ingest latency);
- revoked: the cached raw states are dropped (their keys may now be another worker's; the
  cache is checked against each row's version, so this is not needed for correctness, and
  it is bounded in bytes anyway: ``TENURE_PROJECTOR_CACHE_MB``).

At most two batches of ``batch_max`` records are decoded at a time (one prepared, one being
written).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from streams.projector import metrics
from tenure.eventlog.batch_loop import BatchHandler
from tenure.projection.projector import PreparedParse, Projector
from tenure.projection.records import parse_records


class ProjectorBatches(BatchHandler[PreparedParse]):
    """Apply batches of canonical-topic records with a :class:`Projector`."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    def prepare(self, records: Sequence[Any]) -> PreparedParse:
        """Decode, fold per key and encode (no durable effect)."""
        return self.projector.prepare(parse_records(iter(records)))

    def write(self, prepared: PreparedParse) -> None:
        """Write the batch's deltas and dirty queues (its dead letters too) in one
        transaction."""
        parsed = prepared.parsed
        started = time.perf_counter()
        self.projector.write(prepared)
        took = time.perf_counter() - started
        metrics.APPLY_SECONDS.observe(took)
        metrics.SINK_WRITE_SECONDS.observe(self.projector.last_write_s)
        metrics.BATCH_RECORDS.observe(parsed.size)
        now = datetime.now(UTC)
        for latest in parsed.progress.values():  # per partition: its newest event
            metrics.PROCESSING_LAG.observe(max(0.0, (now - latest).total_seconds()))

    def committed(self, records: Sequence[Any], prepared: PreparedParse) -> None:
        """Counted once durable and committed (the benchmark reads these)."""
        now_ms = time.time() * 1000
        oldest: dict[tuple[str, int], int] = {}
        for m in records:
            tp = (m.topic, m.partition)
            oldest[tp] = min(oldest.get(tp, m.timestamp), m.timestamp)
        for ts in oldest.values():
            metrics.INGEST_LATENCY.observe(max(0.0, (now_ms - ts) / 1000))
        metrics.RECORDS.labels("applied").inc(prepared.applied)
        metrics.RECORDS.labels("dead_lettered").inc(prepared.dead_lettered)

    def revoked(self) -> None:
        """Drop the cached raw states (their keys may now be another worker's)."""
        self.projector.caches.clear()


__all__ = ["ProjectorBatches"]
