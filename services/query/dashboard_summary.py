"""The numbers behind the built-in dashboard's counts, funnels, pipeline-health and audiences
panels.

Everything comes from the read models and the pipeline's own tables, in one read-only
transaction: no person id leaves this module, only counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenure.domain.level import Level
from tenure.domain.segment import BuyerKind, Segment
from tenure.domain.stage import Stage
from tenure.storage import audience_definitions, audience_reads, summary_reads
from tenure.storage.audience_reads import AudienceSize
from tenure.storage.connection import Conn, read_only_snapshot

SEGMENTS = tuple(s.value for s in Segment)
STAGES = tuple(s.value for s in Stage)
LEVELS = tuple(level.value for level in Level)
FLOW_DAYS = 30
"""The audiences panel shows the membership changes of the last this many days (of the
latest change's time: a replayed or simulated history shows its own last days)."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _counts(conn: Conn) -> dict[str, Any]:
    by: dict[str, dict[str, int]] = {
        "segments": dict.fromkeys(SEGMENTS, 0),
        "stages": dict.fromkeys(STAGES, 0),
        "levels": dict.fromkeys(LEVELS, 0),
        "tiers": {},
    }
    total = 0
    for (
        has_seg,
        has_stage,
        has_level,
        has_tier,
        seg,
        stage,
        level,
        tier,
        n,
    ) in summary_reads.grouped_person_counts(conn):
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


def _funnels(conn: Conn) -> dict[str, Any]:
    row = summary_reads.funnels(conn)
    buyers, activated, in_window, users_first, converted, converted_twice = row[:6]
    one_time, repeat, one_time_never_used, super_users, sponsors, as_of = row[6:]
    return {
        "as_of": _iso(as_of),
        "buyer_kinds": {
            BuyerKind.ONE_TIME_BUYER.value: one_time,
            BuyerKind.REPEAT_BUYER.value: repeat,
        },
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


def _pipeline(conn: Conn) -> dict[str, Any]:
    seq, archived_at, max_event_time, dirty_p, dirty_d, unpublished, transitions = (
        summary_reads.pipeline_state(conn)
    )
    checkpoint = summary_reads.last_replay(conn)
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
            "as_of": _iso(checkpoint.as_of),
            "archive_seq": checkpoint.archive_seq,
            "events": checkpoint.events,
            "completed_at": _iso(checkpoint.rebuilt_at),
        },
    }


def _audiences(conn: Conn) -> dict[str, Any]:
    sizes = audience_reads.sizes(conn)
    listed = []
    for stored in audience_definitions.current(conn):
        name = stored.definition.name
        size = sizes.get(name, AudienceSize())
        listed.append(
            {
                "name": name,
                "channel": str(stored.definition.channel),
                "members": size.members,
                "contactable": size.contactable,
                "suppressed": size.suppressed,
            }
        )
    flows: dict[tuple[datetime, str], dict[str, Any]] = {}
    for day, audience, kind, count in audience_reads.daily_flows(conn, FLOW_DAYS):
        row = flows.setdefault(
            (day, audience),
            {"day": day.date().isoformat(), "audience": audience,
             "entered": 0, "exited": 0, "suppression_changed": 0},
        )  # fmt: skip
        row[kind] = count
    return {"audiences": listed, "audience_flows": list(flows.values())}


def read_summary(conn: Conn) -> dict[str, Any]:
    """Counts by segment/stage/level/tier, funnels, pipeline health and the audiences'
    sizes and daily flows, in one snapshot."""
    with read_only_snapshot(conn):
        return {
            **_counts(conn),
            **_funnels(conn),
            "pipeline": _pipeline(conn),
            **_audiences(conn),
        }
