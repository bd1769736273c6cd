"""The lifecycle read models in Postgres (``persons``, ``devices``) and their atomic rebuild."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tenure.domain.churn import ChurnInputs, churn_inputs_at
from tenure.domain.device_view import DeviceView
from tenure.domain.level import Level
from tenure.domain.segment import BuyerKind, Segment
from tenure.domain.stage import Stage
from tenure.domain.view import PersonView
from tenure.storage import survival_aggregates as survival_store

PERSON_COLUMNS: tuple[str, ...] = (
    "person_id", "as_of", "aliases", "segment", "buyer_kind", "is_customer", "is_user",
    "is_sponsor", "stage", "stage_since", "level", "is_super_user", "tier", "value_score",
    "tags", "churn_inputs", "first_engagement_at", "last_engagement_at",
    "tenure_days", "active_days", "first_paid_order_at", "second_paid_order_at",
    "first_activation_at", "activation_delay_days", "activated_within_window",
    "paid_order_count", "net_spend_minor", "referral_count", "feedback_count",
    "devices_used", "last_fact_at", "entry_path", "first_use_at", "device_activation_at",
    "products", "cohort_week", "engaged_weeks",
    "consent",
)  # fmt: skip
"""Columns of ``persons``, in the order :func:`person_row` fills them."""

STORED_PERSON_COLUMNS: tuple[str, ...] = (*PERSON_COLUMNS, "intended_hardware_at", "next_change_at")
"""A stored ``persons`` row: the view's columns; the first hardware meant for the person
(what the audiences' ``gift_recipient_else_payer`` contact counts from, stored for the
audience stage, not shown by the API: migration 0022); then when the view next changes with
no new facts (``tenure/domain/schedule.py``; ``NULL``: never), the time-driven work
queue. :func:`stored_person_row` fills it."""

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
        orjson.dumps(_churn_inputs(churn)).decode(),
        view.first_engagement_at, view.last_engagement_at, view.tenure_days, view.active_days,
        view.first_paid_order_at, view.second_paid_order_at, view.first_activation_at,
        view.activation_delay_days, view.activated_within_window, view.paid_order_count,
        orjson.dumps(dict(view.net_spend)).decode(), view.referral_count, view.feedback_count,
        view.devices_used, view.last_fact_at, view.entry_path, view.first_use_at,
        view.device_activation_at, list(view.products), view.cohort_week,
        list(view.engaged_weeks), orjson.dumps(dict(view.consent)).decode(),
    )  # fmt: skip


def stored_person_row(
    view: PersonView, aliases: Sequence[str], next_change_at: datetime | None
) -> tuple[Any, ...]:
    """The stored ``persons`` row (``STORED_PERSON_COLUMNS``) of a person view."""
    return (*person_row(view, aliases), view.intended_hardware_at, next_change_at)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def person_view_of(row: dict[str, Any]) -> PersonView:
    """The person view a stored ``persons`` row (a dict by column, ``STORED_PERSON_COLUMNS``
    as :func:`stored_person_row` fills them) was written from: its inverse (aliases and
    ``next_change_at`` are not part of the view; a stored row is never an erased view). A
    row without ``intended_hardware_at`` (``PERSON_COLUMNS`` only) reads it as ``None``."""
    churn = _json(row["churn_inputs"]) or {}
    return PersonView(
        person_id=str(row["person_id"]),
        as_of=row["as_of"],
        segment=Segment(row["segment"]),
        buyer_kind=None if row["buyer_kind"] is None else BuyerKind(row["buyer_kind"]),
        is_customer=bool(row["is_customer"]),
        is_user=bool(row["is_user"]),
        is_sponsor=bool(row["is_sponsor"]),
        stage=Stage(row["stage"]),
        stage_since=row["stage_since"],
        level=Level(row["level"]),
        is_super_user=bool(row["is_super_user"]),
        tier=str(row["tier"]),
        value_score=float(row["value_score"]),
        tags=tuple(row["tags"] or ()),
        churn=ChurnInputs(churn.get("silence_days"), churn.get("bucket")),
        first_engagement_at=row["first_engagement_at"],
        last_engagement_at=row["last_engagement_at"],
        tenure_days=int(row["tenure_days"]),
        active_days=int(row["active_days"]),
        first_paid_order_at=row["first_paid_order_at"],
        second_paid_order_at=row["second_paid_order_at"],
        first_activation_at=row["first_activation_at"],
        activation_delay_days=(
            None if row["activation_delay_days"] is None else float(row["activation_delay_days"])
        ),
        activated_within_window=row["activated_within_window"],
        paid_order_count=int(row["paid_order_count"]),
        net_spend=tuple(sorted(_json(row["net_spend_minor"]).items())),
        referral_count=int(row["referral_count"]),
        feedback_count=int(row["feedback_count"]),
        devices_used=int(row["devices_used"]),
        last_fact_at=row["last_fact_at"],
        entry_path=row["entry_path"],
        first_use_at=row["first_use_at"],
        device_activation_at=row["device_activation_at"],
        products=tuple(row["products"] or ()),
        cohort_week=row["cohort_week"],
        engaged_weeks=tuple(row["engaged_weeks"] or ()),
        intended_hardware_at=row.get("intended_hardware_at"),
        consent=tuple(sorted((str(k), bool(v)) for k, v in _json(row["consent"]).items())),
    )


def person_as_of(row: dict[str, Any], as_of: datetime | None) -> dict[str, Any]:
    """A stored ``persons`` row (a dict by column, with ``next_change_at``) as of ``as_of``.

    A row holds its view from its ``as_of`` until its ``next_change_at``: nothing but the
    churn inputs (silence days) change before then without new facts
    (``tenure/domain/schedule.py``). So a row not yet due at a later ``as_of`` reads as of
    it, its churn inputs aged from the stored ones; a row that is due (queued for derive)
    or an earlier ``as_of`` leaves it as is.
    """
    due = row.get("next_change_at")
    if as_of is None or as_of <= row["as_of"] or (due is not None and due <= as_of):
        return row
    moved = {**row, "as_of": as_of}
    last = row.get("last_engagement_at")
    inputs = row.get("churn_inputs")
    if last is not None and isinstance(inputs, dict):
        aged = churn_inputs_at(
            last.astimezone(UTC).date(), inputs.get("bucket"), as_of.astimezone(UTC).date()
        )
        moved["churn_inputs"] = _churn_inputs(aged)
    return moved


def persons_as_of(conn: psycopg.Connection[Any], as_of: datetime | None) -> list[tuple[Any, ...]]:
    """Every ``persons`` row (``PERSON_COLUMNS``) read as of ``as_of``
    (:func:`person_as_of`), by person id."""
    with conn.cursor(row_factory=dict_row) as cur:
        stored = cur.execute(
            sql.SQL("SELECT {} FROM persons ORDER BY person_id").format(
                sql.SQL(", ").join(map(sql.Identifier, STORED_PERSON_COLUMNS))
            )
        ).fetchall()
    return [
        tuple(read[c] for c in PERSON_COLUMNS)
        for read in (person_as_of(row, as_of) for row in stored)
    ]


def _churn_inputs(churn: ChurnInputs) -> dict[str, Any]:
    return {"silence_days": churn.silence_days, "bucket": churn.bucket}


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


def _table_columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum",
            (table,),
        ).fetchall()
    ]


def _merge_from(
    conn: psycopg.Connection[Any], table: str, key: str, columns: Sequence[str]
) -> None:
    """Make ``table`` hold exactly the rows of its staging copy (``{table}_next``) in place:
    rows the staging copy lacks are deleted, the others upserted; columns outside
    ``columns`` go back to their defaults (as in a fresh table). The table keeps its
    identity, so grants, dependent views, publications and triggers on it survive."""
    t, staging, k = sql.Identifier(table), sql.Identifier(f"{table}_next"), sql.Identifier(key)
    conn.execute(
        sql.SQL(
            "DELETE FROM {t} WHERE NOT EXISTS (SELECT 1 FROM {s} WHERE {s}.{k} = {t}.{k})"
        ).format(t=t, s=staging, k=k)
    )
    others = [c for c in _table_columns(conn, table) if c not in columns]
    updates = [sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns]
    updates += [sql.SQL("{c} = DEFAULT").format(c=sql.Identifier(c)) for c in others]
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(
        sql.SQL(
            "INSERT INTO {t} ({c}) SELECT {c} FROM {s} ON CONFLICT ({k}) DO UPDATE SET {u}"
        ).format(t=t, c=cols, s=staging, k=k, u=sql.SQL(", ").join(updates))
    )


def stage(conn: psycopg.Connection[Any]) -> None:
    """Create the empty staging copies of ``persons`` and ``devices`` (``persons_next``,
    ``devices_next``: temporary, dropped when the caller's transaction ends) that
    :func:`stage_rows` fills and :func:`swap_in` merges."""
    for table in ("persons", "devices"):
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                sql.Identifier(f"{table}_next"), sql.Identifier(table)
            )
        )


def stage_rows(
    conn: psycopg.Connection[Any],
    persons: Iterable[tuple[Any, ...]],
    devices: Iterable[tuple[Any, ...]],
) -> tuple[int, int]:
    """Add rows of ``STORED_PERSON_COLUMNS`` and ``DEVICE_COLUMNS`` to the staging copies
    (one ``COPY`` each; called once per replayed part); return how many were added."""
    return (
        _copy_into(conn, "persons_next", STORED_PERSON_COLUMNS, persons),
        _copy_into(conn, "devices_next", DEVICE_COLUMNS, devices),
    )


def swap_in(conn: psycopg.Connection[Any], checkpoint: Checkpoint) -> None:
    """Make ``persons`` and ``devices`` hold exactly their staging copies' rows, recompute
    the survival aggregates and record ``checkpoint``, in the caller's transaction."""
    # ACCESS EXCLUSIVE at once, not EXCLUSIVE then the triggers' ACCESS EXCLUSIVE: that
    # upgrade deadlocked with a live derive pass holding ACCESS SHARE and waiting to write
    # (seen in CI); readers wait for the merge instead.
    conn.execute("LOCK TABLE persons, devices IN ACCESS EXCLUSIVE MODE")
    _merge_from(conn, "persons", "person_id", STORED_PERSON_COLUMNS)
    _merge_from(conn, "devices", "device_id", DEVICE_COLUMNS)
    survival_store.rebuild(conn, checkpoint.as_of)  # triggers + aggregates, same swap
    conn.execute(
        "INSERT INTO projection_checkpoints (projection, as_of, archive_seq, events)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (projection) DO UPDATE SET"
        " as_of = EXCLUDED.as_of, archive_seq = EXCLUDED.archive_seq,"
        " events = EXCLUDED.events, rebuilt_at = now()",
        (checkpoint.projection, checkpoint.as_of, checkpoint.archive_seq, checkpoint.events),
    )


def rebuild(
    conn: psycopg.Connection[Any],
    persons: Iterable[tuple[Any, ...]],
    devices: Iterable[tuple[Any, ...]],
    checkpoint: Checkpoint,
) -> tuple[int, int]:
    """Fill staging copies of ``persons`` (rows of ``STORED_PERSON_COLUMNS``) and
    ``devices``, then make the tables hold exactly their rows, in one transaction
    (:func:`stage`, :func:`stage_rows`, :func:`swap_in`; ``tenure replay`` calls them
    itself, staging one part of the population at a time).

    The tables are merged in place (:func:`_merge_from`), never dropped: what users built
    on them (grants, views, publications) survives a replay. Readers and writers (the live
    derive) wait for the merge (``ACCESS EXCLUSIVE`` lock, taken after the staging copies
    are filled), then see the new rows; never a mix. The survival
    aggregates are recomputed from the new rows in the same transaction. Returns the row
    counts written.
    """
    with conn.transaction():
        stage(conn)
        n_persons, n_devices = stage_rows(conn, persons, devices)
        swap_in(conn, checkpoint)
    return n_persons, n_devices
