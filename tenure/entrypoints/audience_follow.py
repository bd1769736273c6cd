"""``tenure audiences follow``: read the membership changes on ``tenure.audiences.v1`` and
write each one as a JSON line, the way a downstream tool (CRM, messaging) consumes them.

Each line is the CloudEvent exactly as the projector published it (``docs/audiences.md``,
"The change stream"): ``id`` (deterministic: de-duplicate on it, delivery is at least once),
``type`` ``tenure.audience.entered|exited|suppression_changed``, ``subject`` the person's
token, ``data`` ``{audience, version, person_id, change, suppressed, as_of}``.

Two ways to read:

- without a group: every partition from the beginning (or from the end with
  ``from_beginning=False``), nothing committed; for a look or a one-off import;
- in a consumer group: the group's committed position (the beginning the first time), and
  the position committed after the lines are written and flushed, so a restarted follower
  goes on where it stopped and a crash repeats lines rather than losing them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import IO, Final

from kafka import KafkaConsumer, TopicPartition

from tenure.contract.topics import AUDIENCES
from tenure.errors import TenureError

__all__ = ["FollowError", "Followed", "follow", "line_of"]

SESSION_TIMEOUT_MS: Final = 6000
"""A short session: the embedded broker completes a group join after about half of it
(``/work/shared/FACTS.md``), so a follower in a group starts in ~3 s, not ~23 s."""


class FollowError(TenureError, RuntimeError):
    """The change stream cannot be read: the topic does not exist on the broker."""


@dataclass(slots=True)
class Followed:
    """What a follow wrote: ``lines`` changes written, ``skipped`` of other audiences."""

    lines: int = 0
    skipped: int = 0


def _consumer(bootstrap: str, group: str | None, from_beginning: bool) -> KafkaConsumer:
    reset = "earliest" if from_beginning else "latest"
    if group is not None:
        consumer = KafkaConsumer(
            AUDIENCES,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset=reset,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
        )
        return consumer
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = consumer.partitions_for_topic(AUDIENCES)
    if not partitions:
        consumer.close()
        raise FollowError(f"no topic {AUDIENCES} on {bootstrap} (run `tenure topics create`)")
    assigned = [TopicPartition(AUDIENCES, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    if from_beginning:
        consumer.seek_to_beginning(*assigned)
    else:
        consumer.seek_to_end(*assigned)
    return consumer


def line_of(value: bytes | None, audience: str | None) -> str | None:
    """The line to write for one record's value: the CloudEvent as compact JSON, ``None``
    when it is a change of another audience than ``audience`` (``None``: every audience).
    A value that is not a JSON object is written as ``{"undecodable": "..."}``, whatever
    ``audience``, so nothing read is silently dropped."""
    raw = value or b""
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return json.dumps({"undecodable": raw.decode("utf-8", "replace")})
    data = event.get("data")
    if audience is not None and not (isinstance(data, dict) and data.get("audience") == audience):
        return None
    return json.dumps(event, separators=(",", ":"))


def follow(
    bootstrap: str,
    out: IO[str],
    *,
    audience: str | None = None,
    group: str | None = None,
    from_beginning: bool = True,
    idle_timeout_s: float | None = None,
    max_lines: int | None = None,
) -> Followed:
    """Write the membership changes on ``tenure.audiences.v1`` (those of ``audience`` only,
    when given) to ``out``, one CloudEvent per line as JSON, until ``max_lines`` were written
    or no record came for ``idle_timeout_s`` once partitions were assigned (``None``: forever,
    until interrupted).

    ``group``: read in that consumer group and commit after each flushed batch of lines;
    without it, read every partition from the beginning (``from_beginning=False``: from the
    end) and commit nothing. Each record becomes a line by :func:`line_of`.
    """
    followed = Followed()
    consumer = _consumer(bootstrap, group, from_beginning)
    try:
        quiet_since = time.monotonic()
        while max_lines is None or followed.lines < max_lines:
            left = None if max_lines is None else max_lines - followed.lines
            batches = consumer.poll(timeout_ms=500, max_records=left)
            records = [r for batch in batches.values() for r in batch]
            if not records:
                if not consumer.assignment():  # a group still joining is not idle
                    quiet_since = time.monotonic()
                elif idle_timeout_s is not None and time.monotonic() - quiet_since > idle_timeout_s:
                    break
                continue
            quiet_since = time.monotonic()
            for record in records:
                line = line_of(record.value, audience)
                if line is None:
                    followed.skipped += 1
                    continue
                out.write(line + "\n")
                followed.lines += 1
            out.flush()
            if group is not None:
                consumer.commit()
    finally:
        consumer.close()
    return followed
