"""Counts over the read models and the pipeline's tables: the dashboard summary and the
business gauges read them here. Only counts and instants leave this module, never an id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from psycopg_pool import ConnectionPool

from tenure.storage.connection import Conn, read_only_snapshot

__all__ = [
    "Funnels",
    "GroupedCount",
    "LastReplay",
    "PipelineState",
    "Snapshot",
    "funnels",
    "grouped_person_counts",
    "last_replay",
    "pipeline_state",
    "read_snapshot",
]

COUNTS_SQL = """
SELECT grouping(segment) = 0, grouping(stage) = 0, grouping(level) = 0, grouping(tier) = 0,
       segment, stage, level, tier, count(*)
FROM persons GROUP BY GROUPING SETS ((segment), (stage), (level), (tier), ())
"""
# Activation: customers -> activated a device as its user -> within the activation window.
# Conversion (user -> customer): engaged before any paid order -> paid later -> paid twice.
FUNNEL_SQL = """
SELECT count(*) FILTER (WHERE is_customer),
       count(*) FILTER (WHERE is_customer AND first_activation_at IS NOT NULL),
       count(*) FILTER (WHERE is_customer AND activated_within_window),
       count(*) FILTER (WHERE first_engagement_at IS NOT NULL AND
                        (first_paid_order_at IS NULL OR first_engagement_at < first_paid_order_at)),
       count(*) FILTER (WHERE first_engagement_at < first_paid_order_at),
       count(*) FILTER (WHERE first_engagement_at < first_paid_order_at
                        AND second_paid_order_at IS NOT NULL),
       count(*) FILTER (WHERE buyer_kind = 'one_time_buyer'),
       count(*) FILTER (WHERE buyer_kind = 'repeat_buyer'),
       count(*) FILTER (WHERE segment = 'customer_only' AND buyer_kind = 'one_time_buyer'),
       count(*) FILTER (WHERE is_super_user),
       count(*) FILTER (WHERE is_sponsor),
       max(as_of)
FROM persons
"""
PIPELINE_SQL = """
SELECT (SELECT max(seq) FROM event_archive),
       (SELECT archived_at FROM event_archive ORDER BY seq DESC LIMIT 1),
       (SELECT max(max_event_time) FROM projection_progress),
       (SELECT count(DISTINCT person_id) FROM dirty_persons),
       (SELECT count(DISTINCT device_id) FROM dirty_devices),
       (SELECT count(*) FROM lifecycle_transitions t, transitions_relay_position r
        WHERE (t.written_xid, t.seq) > (r.xid, r.seq)),
       (SELECT max(seq) FROM lifecycle_transitions)
"""
LAST_REPLAY_SQL = """
SELECT as_of, archive_seq, events, rebuilt_at
FROM projection_checkpoints WHERE projection = 'lifecycle'
"""

BUSINESS_PERSONS_SQL = """
SELECT segment, stage, level, tier, coalesce(buyer_kind, 'none'), count(*),
       count(*) FILTER (WHERE is_super_user), count(*) FILTER (WHERE is_sponsor),
       count(*) FILTER (WHERE activated_within_window),
       count(*) FILTER (WHERE activated_within_window IS NOT NULL)
FROM persons GROUP BY 1, 2, 3, 4, 5
"""
BUSINESS_TRANSITIONS_SQL = """
SELECT kind, count(*), count(*) FILTER (WHERE (t.written_xid, t.seq) > (r.xid, r.seq))
FROM lifecycle_transitions t, transitions_relay_position r GROUP BY kind
"""
BUSINESS_PROGRESS_SQL = "SELECT extract(epoch FROM max(max_event_time)) FROM projection_progress"
BUSINESS_CHECKPOINT_SQL = """
SELECT extract(epoch FROM rebuilt_at), events, archive_seq
FROM projection_checkpoints WHERE projection = 'lifecycle'
"""


class GroupedCount(NamedTuple):
    """One grouping set of the persons count: which dimension is grouped, its value, count.

    Exactly one ``by_*`` flag is true, or none for the total row."""

    by_segment: bool
    by_stage: bool
    by_level: bool
    by_tier: bool
    segment: Any  # str in its grouping set, NULL in the others
    stage: Any
    level: Any
    tier: Any
    persons: int


class Funnels(NamedTuple):
    """The counts of the activation and conversion funnels and of the buyer kinds."""

    buyers: int
    activated: int
    activated_in_window: int
    users_first: int
    converted: int
    converted_twice: int
    one_time: int
    repeat: int
    one_time_never_used: int
    super_users: int
    sponsors: int
    as_of: datetime | None


class PipelineState(NamedTuple):
    """How far the archive and the projection are, and what is waiting."""

    archive_seq: int | None
    last_archived_at: datetime | None
    max_event_time: datetime | None
    dirty_persons: int
    dirty_devices: int
    transitions_unpublished: int
    transitions_seq: int | None


class LastReplay(NamedTuple):
    """The checkpoint of the last rebuild of the lifecycle read models."""

    as_of: datetime
    archive_seq: int
    events: int
    rebuilt_at: datetime


def grouped_person_counts(conn: Conn) -> list[GroupedCount]:
    """Persons counted by segment, by stage, by level, by tier, and in total."""
    return [GroupedCount(*row) for row in conn.execute(COUNTS_SQL)]


def funnels(conn: Conn) -> Funnels:
    """The funnel and buyer counts over ``persons``."""
    row = conn.execute(FUNNEL_SQL).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return Funnels(*row)


def pipeline_state(conn: Conn) -> PipelineState:
    """The archive's and the projection's progress and backlogs."""
    row = conn.execute(PIPELINE_SQL).fetchone()
    assert row is not None
    return PipelineState(*row)


def last_replay(conn: Conn) -> LastReplay | None:
    """The last rebuild's checkpoint (``None`` before the first)."""
    row = conn.execute(LAST_REPLAY_SQL).fetchone()
    return None if row is None else LastReplay(*row)


@dataclass
class Snapshot:
    """One reading of the business numbers."""

    persons: list[tuple[Any, ...]] = field(default_factory=list)
    transitions: list[tuple[Any, ...]] = field(default_factory=list)
    max_event_time: float | None = None
    checkpoint: tuple[Any, ...] | None = None
    seconds: float = 0.0


def read_snapshot(pool: ConnectionPool) -> Snapshot:
    """Read every business number in one short read-only transaction."""
    started = time.perf_counter()
    with pool.connection() as conn, read_only_snapshot(conn, repeatable=False):
        persons = conn.execute(BUSINESS_PERSONS_SQL).fetchall()
        transitions = conn.execute(BUSINESS_TRANSITIONS_SQL).fetchall()
        progress = conn.execute(BUSINESS_PROGRESS_SQL).fetchone()
        checkpoint = conn.execute(BUSINESS_CHECKPOINT_SQL).fetchone()
    return Snapshot(
        persons=persons,
        transitions=transitions,
        max_event_time=float(progress[0]) if progress and progress[0] is not None else None,
        checkpoint=checkpoint,
        seconds=time.perf_counter() - started,
    )
