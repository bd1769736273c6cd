"""The numbers behind the built-in dashboard's counts, funnels and pipeline-health panels.

Everything comes from the read models and the pipeline's own tables, in one read-only
transaction: no person id leaves this module, only counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

SEGMENTS = ("customer_and_user", "customer_only", "user_only", "prospect")
STAGES = ("none", "new", "active", "at_risk", "churned", "resurrected")
LEVELS = ("none", "micro", "weak", "strong", "super")
BUYER_KINDS = ("one_time_buyer", "repeat_buyer")

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
       (SELECT count(*) FROM lifecycle_transitions WHERE published_at IS NULL),
       (SELECT max(seq) FROM lifecycle_transitions)
"""
CHECKPOINT_SQL = """
SELECT as_of, archive_seq, events, rebuilt_at
FROM projection_checkpoints WHERE projection = 'lifecycle'
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _counts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    by: dict[str, dict[str, int]] = {
        "segments": dict.fromkeys(SEGMENTS, 0),
        "stages": dict.fromkeys(STAGES, 0),
        "levels": dict.fromkeys(LEVELS, 0),
        "tiers": {},
    }
    total = 0
    for has_seg, has_stage, has_level, has_tier, seg, stage, level, tier, n in conn.execute(
        COUNTS_SQL
    ):
        if has_seg:
            by["segments"][seg] = n
        elif has_stage:
            by["stages"][stage] = n
        elif has_level:
            by["levels"][level] = n
        elif has_tier:
            by["tiers"][tier] = n
        else:
            total = n
    return {"persons": total, **by}


def _funnels(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(FUNNEL_SQL).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    buyers, activated, in_window, users_first, converted, converted_twice = row[:6]
    one_time, repeat, one_time_never_used, super_users, sponsors, as_of = row[6:]
    return {
        "as_of": _iso(as_of),
        "buyer_kinds": {"one_time_buyer": one_time, "repeat_buyer": repeat},
        # The domain's one-time buyer: paid exactly once and is not a user.
        "one_time_buyers": one_time_never_used,
        "super_users": super_users,
        "sponsors": sponsors,
        "funnels": {
            "activation": [
                {"step": "customers", "count": buyers},
                {"step": "activated a device", "count": activated},
                {"step": "activated within the window", "count": in_window},
            ],
            "conversion": [
                {"step": "users before paying", "count": users_first},
                {"step": "paid later", "count": converted},
                {"step": "paid twice", "count": converted_twice},
            ],
        },
    }


def _pipeline(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(PIPELINE_SQL).fetchone()
    assert row is not None
    seq, archived_at, max_event_time, dirty_p, dirty_d, unpublished, transitions = row
    checkpoint = conn.execute(CHECKPOINT_SQL).fetchone()
    return {
        "read_at": datetime.now(UTC).isoformat(),
        "archived_events": seq or 0,
        "last_archived_at": _iso(archived_at),
        "projection_max_event_time": _iso(max_event_time),
        "backlog": {"persons": dirty_p, "devices": dirty_d},
        "transitions_emitted": transitions or 0,
        "transitions_unpublished": unpublished,
        "last_replay": None
        if checkpoint is None
        else {
            "as_of": _iso(checkpoint[0]),
            "archive_seq": checkpoint[1],
            "events": checkpoint[2],
            "completed_at": _iso(checkpoint[3]),
        },
    }


def read_summary(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Counts by segment/stage/level/tier, funnels and pipeline health, in one snapshot."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return {**_counts(conn), **_funnels(conn), "pipeline": _pipeline(conn)}
