"""Reading the lifecycle read models: one person, one device, filtered pages of persons.

The query service's reads of ``persons`` and ``devices`` (rows as dicts, the columns of
:mod:`tenure.storage.read_models`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tenure.storage import person_changes
from tenure.storage.churn_risk import risk_at_least
from tenure.storage.connection import Conn
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS, person_as_of

_NOTHING = sql.SQL("")
_STORED = (*PERSON_COLUMNS, "next_change_at")
_LIVE_AS_OF = sql.SQL(", (SELECT as_of FROM survival_state) AS live_as_of")
"""The live projection's as-of instant (recorded by the aggregates stage): rows are read as
of it (:func:`~tenure.storage.read_models.person_as_of`)."""


def _as_of_now(row: dict[str, Any]) -> dict[str, Any]:
    """A person row read as of the live projection's instant, without the bookkeeping."""
    live = row.pop("live_as_of", None)
    read = person_as_of(row, live)
    read.pop("next_change_at", None)
    return read


@dataclass(frozen=True, slots=True)
class PersonFilter:
    """Filters of the persons list; ``None`` means any."""

    segment: str | None = None
    stage: str | None = None
    level: str | None = None
    tier: str | None = None
    super_user: bool | None = None
    churn_cutoffs: Mapping[str, date] | None = None
    """Churn risk at least a threshold: the per-bucket last-day cutoffs of
    ``ChurnRiskTable.last_day_cutoffs`` (``tenure/storage/churn_risk.py``)."""


def _select(table: str, columns: tuple[str, ...], extra: sql.Composable = _NOTHING) -> sql.Composed:
    return sql.SQL("SELECT {}{} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), extra, sql.Identifier(table)
    )


BY_ID_OR_ALIAS = " WHERE person_id = %s OR aliases @> ARRAY[%s]::text[]"
"""The ``persons`` rows of a canonical id or of an alias (two parameters: the id twice)."""


def person(conn: Conn, person_id: str) -> dict[str, Any] | None:
    """The row of a person by canonical id, by any alias of the same human, or by the token
    of either (as transitions carry it; an erased token finds nothing), as of the live
    projection's instant."""
    found = conn.execute(
        "SELECT person_id FROM person_pseudonyms WHERE pseudonym = %s", (person_id,)
    ).fetchone()
    wanted = person_id if found is None or found[0] is None else str(found[0])
    # ``@>`` (not ``= ANY``) so that the GIN index ``persons_by_alias`` answers the alias
    # half: the planner ORs the primary key and that index, never a scan of ``persons``.
    query = _select("persons", _STORED, _LIVE_AS_OF) + sql.SQL(
        BY_ID_OR_ALIAS + " ORDER BY person_id = %s DESC LIMIT 1"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (wanted, wanted, wanted)).fetchone()
    return None if row is None else _as_of_now(row)


def device(conn: Conn, device_id: str) -> dict[str, Any] | None:
    """The row of a device."""
    query = _select("devices", DEVICE_COLUMNS) + sql.SQL(" WHERE device_id = %s")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (device_id,)).fetchone()


def persons_page(
    conn: Conn, filters: PersonFilter, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` persons matching ``filters``, in id order, after the cursor id, as of
    the live projection's instant."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for column, value in (
        ("segment", filters.segment),
        ("stage", filters.stage),
        ("level", filters.level),
        ("tier", filters.tier),
        ("is_super_user", filters.super_user),
    ):
        if value is not None:
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if filters.churn_cutoffs is not None:
        clauses.append(risk_at_least(filters.churn_cutoffs))
    if after is not None:
        clauses.append(sql.SQL("person_id > %s"))
        params.append(after)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")
    query = (
        _select("persons", _STORED, _LIVE_AS_OF) + where + sql.SQL(" ORDER BY person_id LIMIT %s")
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return [_as_of_now(row) for row in cur.execute(query, (*params, limit)).fetchall()]


def persons_changed(
    conn: Conn, cursor: person_changes.ChangeCursor, limit: int
) -> person_changes.ChangePage:
    """Up to ``limit`` changes of ``persons`` after ``cursor`` in change order
    (:mod:`tenure.storage.person_changes`), rows as of the live projection's instant. Run it
    in a repeatable-read snapshot (``read_only_snapshot``): the horizon and the rows must
    come from one snapshot."""
    page = person_changes.changes_after(conn, cursor, limit, _STORED)
    return replace(page, persons=[_as_of_now(row) for row in page.persons])
