"""The lifecycle read models in Postgres (``persons``, ``devices``) and their atomic rebuild."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

from tenure.analytics.live import store as survival_store
from tenure.domain.device_view import DeviceView
from tenure.domain.view import PersonView

PERSON_COLUMNS: tuple[str, ...] = (
    "person_id", "as_of", "aliases", "segment", "buyer_kind", "is_customer", "is_user",
    "is_sponsor", "stage", "stage_since", "level", "is_super_user", "tier", "value_score",
    "tags", "churn_inputs", "first_engagement_at", "last_engagement_at",
    "tenure_days", "active_days", "first_paid_order_at", "second_paid_order_at",
    "first_activation_at", "activation_delay_days", "activated_within_window",
    "paid_order_count", "net_spend_minor", "referral_count", "feedback_count",
    "devices_used", "last_fact_at", "entry_path", "first_use_at", "device_activation_at",
    "products", "cohort_week", "engaged_weeks",
)  # fmt: skip
"""Columns of ``persons``, in the order :func:`person_row` fills them."""

DEVICE_COLUMNS: tuple[str, ...] = (
    "device_id", "product", "user_id", "payer_id", "beneficiary_id", "is_sponsored",
    "activated_at", "first_use_at", "last_use_at", "active_days", "deactivated_at",
)  # fmt: skip
"""Columns of ``devices``, in the order :func:`device_row` fills them."""


def person_row(view: PersonView, aliases: Sequence[str]) -> tuple[Any, ...]:
    """The ``persons`` row of a person view (``aliases``: the human's other ids)."""
    churn = view.churn
    return (
        view.person_id, view.as_of, sorted(aliases), str(view.segment),
        None if view.buyer_kind is None else str(view.buyer_kind), view.is_customer,
        view.is_user, view.is_sponsor, str(view.stage), view.stage_since, str(view.level),
        view.is_super_user, view.tier, view.value_score, list(view.tags),
        orjson.dumps({"silence_days": churn.silence_days, "bucket": churn.bucket}).decode(),
        view.first_engagement_at, view.last_engagement_at, view.tenure_days, view.active_days,
        view.first_paid_order_at, view.second_paid_order_at, view.first_activation_at,
        view.activation_delay_days, view.activated_within_window, view.paid_order_count,
        orjson.dumps(dict(view.net_spend)).decode(), view.referral_count, view.feedback_count,
        view.devices_used, view.last_fact_at, view.entry_path, view.first_use_at,
        view.device_activation_at, list(view.products), view.cohort_week,
        list(view.engaged_weeks),
    )  # fmt: skip


def device_row(view: DeviceView) -> tuple[Any, ...]:
    """The ``devices`` row of a device view."""
    return (
        view.device_id, view.product, view.user_id, view.payer_id, view.beneficiary_id,
        view.is_sponsored, view.activated_at, view.first_use_at, view.last_use_at,
        view.active_days, view.deactivated_at,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a rebuilt projection reflects: the as-of instant and the archive position."""

    projection: str
    as_of: datetime | None
    archive_seq: int
    events: int


def _copy_into(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    n = 0
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def rebuild(
    conn: psycopg.Connection[Any],
    persons: Iterable[tuple[Any, ...]],
    devices: Iterable[tuple[Any, ...]],
    checkpoint: Checkpoint,
) -> tuple[int, int]:
    """Fill fresh copies of ``persons`` and ``devices`` and swap them in atomically.

    Readers see the old tables until the swap commits, then the new ones; never a mix. The
    survival aggregates are recomputed from the new persons table in the same transaction.
    Returns the row counts written.
    """
    with conn.transaction():
        for table in ("persons", "devices"):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"{table}_next")))
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier(f"{table}_next"), sql.Identifier(table)
                )
            )
        n_persons = _copy_into(conn, "persons_next", PERSON_COLUMNS, persons)
        n_devices = _copy_into(conn, "devices_next", DEVICE_COLUMNS, devices)
        for table in ("persons", "devices"):
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
            conn.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    sql.Identifier(f"{table}_next"), sql.Identifier(table)
                )
            )
        survival_store.rebuild(conn, checkpoint.as_of)  # triggers + aggregates, same swap
        conn.execute(
            "INSERT INTO projection_checkpoints (projection, as_of, archive_seq, events)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (projection) DO UPDATE SET"
            " as_of = EXCLUDED.as_of, archive_seq = EXCLUDED.archive_seq,"
            " events = EXCLUDED.events, rebuilt_at = now()",
            (checkpoint.projection, checkpoint.as_of, checkpoint.archive_seq, checkpoint.events),
        )
    return n_persons, n_devices
