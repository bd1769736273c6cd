"""Pipeline metrics every stream worker shares: dead letters, consumer lag, batches
delivered again, readiness.

The consumer lag, the batches delivered again and the readiness gauge are kept by the
consume loop every worker runs (:mod:`tenure.eventlog.batch_loop`), the dead-letter counter
by the dead-letter sink; this module names them for the workers and the metric
documentation.

Defined once so that workers running in one Python process (tests, embedded runs) do not
register the same metric name twice. Labels are bounded: worker or consumer group names,
topics, partition numbers and rejection categories (``malformed``, ``envelope``, the
contract's categories); never an id.
"""

from __future__ import annotations

from tenure.eventlog.batch_loop import BATCHES_DELIVERED_AGAIN as BATCHES_DELIVERED_AGAIN
from tenure.eventlog.batch_loop import CONSUMER_LAG as CONSUMER_LAG
from tenure.eventlog.batch_loop import WORKER_READY as WORKER_READY
from tenure.eventlog.deadletter import DEAD_LETTER_COUNT

DEAD_LETTERS = DEAD_LETTER_COUNT
"""``tenure_dead_letters_total{worker, category}`` (defined with the dead-letter sink)."""

__all__ = ["BATCHES_DELIVERED_AGAIN", "CONSUMER_LAG", "DEAD_LETTERS", "WORKER_READY"]
