"""Reading the lifecycle read models: one person, one device, filtered pages of persons.

The query service's reads of ``persons`` and ``devices`` (rows as dicts, the columns of
:mod:`tenure.storage.read_models`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tenure.storage.churn_risk import risk_at_least
from tenure.storage.connection import Conn
from tenure.storage.read_models import DEVICE_COLUMNS, PERSON_COLUMNS


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


def _select(table: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
    )


BY_ID_OR_ALIAS = " WHERE person_id = %s OR aliases @> ARRAY[%s]::text[]"
"""The ``persons`` rows of a canonical id or of an alias (two parameters: the id twice)."""


def person(conn: Conn, person_id: str) -> dict[str, Any] | None:
    """The row of a person by canonical id, by any alias of the same human, or by the token
    of either (as transitions carry it; an erased token finds nothing)."""
    found = conn.execute(
        "SELECT person_id FROM person_pseudonyms WHERE pseudonym = %s", (person_id,)
    ).fetchone()
    wanted = person_id if found is None or found[0] is None else str(found[0])
    # ``@>`` (not ``= ANY``) so that the GIN index ``persons_by_alias`` answers the alias
    # half: the planner ORs the primary key and that index, never a scan of ``persons``.
    query = _select("persons", PERSON_COLUMNS) + sql.SQL(
        BY_ID_OR_ALIAS + " ORDER BY person_id = %s DESC LIMIT 1"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (wanted, wanted, wanted)).fetchone()


def device(conn: Conn, device_id: str) -> dict[str, Any] | None:
    """The row of a device."""
    query = _select("devices", DEVICE_COLUMNS) + sql.SQL(" WHERE device_id = %s")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (device_id,)).fetchone()


def persons_page(
    conn: Conn, filters: PersonFilter, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` persons matching ``filters``, in id order, after the cursor id."""
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
    query = _select("persons", PERSON_COLUMNS) + where + sql.SQL(" ORDER BY person_id LIMIT %s")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (*params, limit)).fetchall()
