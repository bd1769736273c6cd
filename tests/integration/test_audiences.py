"""Audiences over the real Postgres: the shipped file seeded at migrate (new versions only
when it changes), CRUD through the HTTP API with and without the write scope, members in
pages and in change order, sizes, and exports (CSV, Parquet) read back."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg_pool import ConnectionPool

from services.query.app import create_app
from tenure.config import Settings, TenureConfig
from tenure.domain.audience import DayRange
from tenure.entrypoints.audiences import ExportError, export
from tenure.storage import audience_definitions
from tenure.storage.migrations import migrate
from tenure.storage.tokens import create_token
from tests.integration.conftest import ServerThread
from tests.integration.horizon import wait_for_the_horizon

pytestmark = pytest.mark.postgres

SHIPPED = ("advocates", "care-before-churn", "first-purchase", "set-up-help", "win-back")
T = datetime(2026, 3, 1, tzinfo=UTC)
BODY: dict[str, Any] = {
    "description": "Gold members who went quiet: a personal call.",
    "channel": "sms",
    "quiet_days": 10,
    "filter": {"tier": ["gold", "platinum"], "stage": ["at_risk"]},
}


def versions(conn: psycopg.Connection[Any], name: str) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT version, source FROM audience_definitions WHERE name = %s ORDER BY version",
        (name,),
    ).fetchall()
    return [(int(v), str(s)) for v, s in rows]


def test_migrate_seeds_the_shipped_file_and_only_a_changed_file_makes_a_version(
    pool: ConnectionPool, database_url: str
) -> None:
    with pool.connection() as conn:
        assert [s.definition.name for s in audience_definitions.current(conn)] == list(SHIPPED)
        assert all(versions(conn, name) == [(1, "file")] for name in SHIPPED)
    with psycopg.connect(database_url) as conn:
        migrate(conn)  # again: nothing new
        assert versions(conn, "win-back") == [(1, "file")]
        shipped = audience_definitions.shipped_audiences()
        changed = [replace(d, quiet_days=45) if d.name == "win-back" else d for d in shipped]
        written = audience_definitions.seed_shipped(conn, changed)
        assert [(s.definition.name, s.definition.version) for s in written] == [("win-back", 2)]
        assert audience_definitions.seed_shipped(conn, changed) == []
        # the API changes set-up-help; the file, unchanged, does not undo it
        document = audience_definitions.get(conn, "set-up-help")
        assert document is not None
        edited = document.definition.to_document()
        edited["filter"]["days_since_purchase"] = {"min": 3}
        stored, written_now = audience_definitions.save(conn, edited)
        assert written_now and stored.definition.version == 2 and stored.source == "api"
        assert stored.definition.filter.days_since_purchase == DayRange(3, None)
        assert audience_definitions.seed_shipped(conn, changed) == []
        current = audience_definitions.get(conn, "set-up-help")
        assert current is not None and current.definition.version == 2


def test_concurrent_writers_of_one_audience_get_one_version_each(pool: ConnectionPool) -> None:
    def put(quiet_days: int) -> int:
        with pool.connection() as conn:
            stored, written = audience_definitions.save(
                conn, {"name": "vip-care", **BODY, "quiet_days": quiet_days}
            )
            assert written
            return stored.definition.version

    with ThreadPoolExecutor(8) as workers:
        assigned = sorted(workers.map(put, range(1, 9)))
    assert assigned == list(range(1, 9))
    with pool.connection() as conn:
        assert versions(conn, "vip-care") == [(v, "api") for v in range(1, 9)]


@pytest.fixture
def api(pool: ConnectionPool) -> Any:
    with pool.connection() as conn:
        read = create_token(conn, "crm", scope="read")
        write = create_token(conn, "marketing", scope="audiences:write")
    with ServerThread(create_app(pool=pool)) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client, {"Authorization": f"Bearer {read}"}, {"Authorization": f"Bearer {write}"}


def test_audiences_crud_needs_the_write_scope(api: Any) -> None:
    client, read, write = api
    listed = client.get("/v1/audiences", headers=read)
    assert listed.status_code == 200
    assert [a["name"] for a in listed.json()["audiences"]] == list(SHIPPED)
    care = client.get("/v1/audiences/care-before-churn", headers=read).json()
    assert care["channel"] == "push" and care["filter"]["churn_risk"] == {"min": 0.5}
    assert care["size"] == {
        "members": 0, "contactable": 0,
        "suppressed": {"erased": 0, "no_consent": 0, "quiet_period": 0},
    }  # fmt: skip

    refused = client.put("/v1/audiences/vip-care", json=BODY, headers=read)
    assert refused.status_code == 403 and "audiences:write" in refused.json()["error"]
    assert client.put("/v1/audiences/vip-care", json=BODY).status_code == 401
    assert client.get("/v1/audiences", headers=write).status_code == 403  # writes only

    created = client.put("/v1/audiences/vip-care", json=BODY, headers=write)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.json()["source"] == "api"
    again = client.put("/v1/audiences/vip-care", json=BODY, headers=write)
    assert again.status_code == 200 and again.json()["version"] == 1  # idempotent
    changed = client.put("/v1/audiences/vip-care", json={**BODY, "quiet_days": 20}, headers=write)
    assert changed.status_code == 201 and changed.json()["version"] == 2
    assert client.get("/v1/audiences/vip-care", headers=read).json()["quiet_days"] == 20

    bad = {**BODY, "filter": {"days_since_purchase": {"min": 5, "max": 2}}}
    invalid = client.put("/v1/audiences/vip-care", json=bad, headers=write)
    assert invalid.status_code == 422
    assert invalid.json()["error"].startswith("audience filter.days_since_purchase:")
    unknown_tag = {**BODY, "filter": {"tags": ["famous"]}}
    assert client.put("/v1/audiences/vip-care", json=unknown_tag, headers=write).status_code == 422
    bad_name = client.put("/v1/audiences/VIP", json=BODY, headers=write)
    assert bad_name.status_code == 422

    gone = client.delete("/v1/audiences/vip-care", headers=write)
    assert gone.status_code == 200 and gone.json()["retired_at"] is not None
    names = [a["name"] for a in client.get("/v1/audiences", headers=read).json()["audiences"]]
    assert "vip-care" not in names
    assert client.get("/v1/audiences/vip-care", headers=read).json()["version"] == 2
    assert client.delete("/v1/audiences/vip-care", headers=read).status_code == 403
    revived = client.put("/v1/audiences/vip-care", json=BODY, headers=write)
    assert revived.status_code == 201 and revived.json()["version"] == 3
    assert revived.json()["retired_at"] is None

    for missing in (
        client.get("/v1/audiences/nobody", headers=read),
        client.get("/v1/audiences/nobody/members", headers=read),
        client.delete("/v1/audiences/nobody", headers=write),
    ):
        assert missing.status_code == 404 and "nobody" in missing.json()["error"]


def add_members(pool: ConnectionPool, audience: str, rows: list[tuple[str, str | None]]) -> None:
    with pool.connection() as conn, conn.transaction():
        for index, (person_id, suppressed) in enumerate(rows):
            conn.execute(
                "INSERT INTO audience_members (audience, person_id, version, entered_at, "
                "suppressed) VALUES (%s, %s, 1, %s, %s) ON CONFLICT (audience, person_id) DO "
                "UPDATE SET suppressed = excluded.suppressed, changed_xid = pg_current_xact_id()",
                (audience, person_id, T + timedelta(hours=index), suppressed),
            )


POPULATION = [
    ("p01", None), ("p02", "no_consent"), ("p03", None), ("p04", "quiet_period"),
    ("p05", None), ("p06", None), ("p07", "erased"), ("p08", None),
]  # fmt: skip


def test_members_page_by_cursor_and_sizes(pool: ConnectionPool, api: Any) -> None:
    client, read, _ = api
    add_members(pool, "win-back", POPULATION)
    add_members(pool, "advocates", [("p01", None)])

    def pages(**params: Any) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
            reply = client.get("/v1/audiences/win-back/members", params=query, headers=read)
            assert reply.status_code == 200, reply.text
            seen += [m["person_id"] for m in reply.json()["members"]]
            cursor = reply.json()["next"]
            if cursor is None:
                return seen

    assert pages() == ["p01", "p03", "p05", "p06", "p08"]
    assert pages(include_suppressed="true") == [p for p, _ in POPULATION]
    win_back = client.get("/v1/audiences/win-back", headers=read).json()
    assert win_back["size"] == {
        "members": 8, "contactable": 5,
        "suppressed": {"erased": 1, "no_consent": 1, "quiet_period": 1},
    }  # fmt: skip
    listed = {
        a["name"]: a["size"]["members"]
        for a in client.get("/v1/audiences", headers=read).json()["audiences"]
    }
    assert listed == {"advocates": 1, "care-before-churn": 0, "first-purchase": 0,
                      "set-up-help": 0, "win-back": 8}  # fmt: skip


def test_members_updated_since_follows_entries_changes_and_exits(
    pool: ConnectionPool, database_url: str, api: Any
) -> None:
    client, read, _ = api
    url = "/v1/audiences/win-back/members"

    def follow(since: str) -> tuple[list[tuple[str, Any]], list[str], str]:
        reply = client.get(url, params={"updated_since": since, "limit": 3}, headers=read)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        members = [(m["person_id"], m["suppressed"]) for m in body["members"]]
        return members, [e["person_id"] for e in body["exited"]], body["next"]

    add_members(pool, "win-back", POPULATION[:4])
    add_members(pool, "advocates", [("p09", None)])  # another audience: never seen here
    wait_for_the_horizon(database_url)
    seen: list[tuple[str, Any]] = []
    since = "0"
    for _ in range(3):
        members, exited, since = follow(since)
        seen += members
        assert exited == []
    assert seen == POPULATION[:4]
    assert follow(since) == ([], [], since)

    # a writer that took its xid first but commits last is not skipped
    late = psycopg.connect(database_url)
    late.execute(
        "INSERT INTO audience_members (audience, person_id, version, entered_at) "
        "VALUES ('win-back', 'p20', 1, %s)",
        (T,),
    )
    add_members(pool, "win-back", [("p01", "quiet_period")])  # suppressed now
    assert follow(since) == ([], [], since)  # held back behind the open transaction
    late.commit()
    late.close()
    with pool.connection() as conn, conn.transaction():
        conn.execute(
            "DELETE FROM audience_members WHERE audience = 'win-back' AND person_id = 'p02'"
        )
        conn.execute(
            "INSERT INTO audience_exits (audience, person_id, exited_at)"
            " VALUES ('win-back', 'p02', %s)",
            (T + timedelta(days=1),),
        )
    wait_for_the_horizon(database_url)
    members, exited, after = follow(since)
    assert members == [("p20", None), ("p01", "quiet_period")] and exited == ["p02"]
    assert follow(after) == ([], [], after)

    for params in ({"updated_since": "0", "cursor": "p01"},
                   {"updated_since": "0", "include_suppressed": "true"},
                   {"updated_since": "!!"}):  # fmt: skip
        refused = client.get(url, params=params, headers=read)
        assert refused.status_code == 422 and refused.json()["error"].startswith("updated_since")


def test_export_csv_and_parquet_read_back_equal_the_rows(
    pool: ConnectionPool, database_url: str, tmp_path: Path
) -> None:
    add_members(pool, "win-back", POPULATION)
    settings = Settings(TenureConfig.from_env({}), database_url)
    expected = [
        {"audience": "win-back", "version": 1, "person_id": p, "channel": "email",
         "entered_at": T + timedelta(hours=i), "suppressed": s}
        for i, (p, s) in enumerate(POPULATION)
    ]  # fmt: skip
    contactable = [row for row in expected if row["suppressed"] is None]

    for include, wanted in ((False, contactable), (True, expected)):
        out = tmp_path / f"win-back-{include}.parquet"
        assert export(
            settings, "win-back", "parquet", out, include_suppressed=include, page_size=3
        ) == len(wanted)
        assert pq.read_table(out).to_pylist() == wanted

        buffer = io.BytesIO()
        assert export(
            settings, "win-back", "csv", buffer, include_suppressed=include, page_size=3
        ) == len(wanted)
        rows = list(csv.DictReader(io.StringIO(buffer.getvalue().decode())))
        assert rows == [
            {**row, "version": str(row["version"]), "entered_at": row["entered_at"].isoformat(),
             "suppressed": row["suppressed"] or ""}
            for row in wanted
        ]  # fmt: skip

    with pytest.raises(ExportError, match="no such audience"):
        export(settings, "nobody", "csv", io.BytesIO())
    with pytest.raises(ExportError, match="format"):
        export(settings, "win-back", "xlsx", io.BytesIO())


def test_the_command_exports_to_a_file(
    pool: ConnectionPool, database_url: str, tmp_path: Path
) -> None:
    add_members(pool, "advocates", POPULATION[:3])
    out = tmp_path / "advocates.parquet"
    env = {"TENURE_DATABASE_URL": database_url, "TENURE_STATE_DIR": str(tmp_path / "state")}
    import os

    done = subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", "audiences", "export", "advocates",
         "--format", "parquet", "--output", str(out), "--include-suppressed"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "exported 3 member(s) of advocates" in done.stderr
    assert [r["person_id"] for r in pq.read_table(out).to_pylist()] == ["p01", "p02", "p03"]
    listed = subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", "audiences", "list"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(SHIPPED)
    advocates = next(x for x in listed.stdout.splitlines() if x.startswith("advocates "))
    assert "3 members: 2 contactable; suppressed: erased 0, no_consent 1" in advocates
    shown = subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", "audiences", "show", "advocates"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["filter"]["tags"] == ["referrer"]
    assert "3 members: 2 contactable; suppressed: erased 0, no_consent 1" in shown.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", "audiences", "show", "nobody"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1 and "no such audience" in missing.stderr


@pytest.mark.soak
def test_the_write_routes_never_answer_5xx_to_a_writer(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    """The OpenAPI fuzz of ``test_openapi_fuzz.py`` with an ``audiences:write`` token, so the
    write routes get past the token check (~45 s: the soak tier)."""
    from tests.integration.test_openapi_fuzz import fuzz

    with pool.connection() as conn:
        token = create_token(conn, "fuzzer", scope="audiences:write")
    with ServerThread(create_app(pool=pool)) as server:
        result = fuzz(server.url, token, tmp_path)
    print("\n" + result.summary("query, audiences:write token"))
    assert result.exit_code == 0 and result.failures == 0, result.output[-6000:]
    assert result.statuses.get(201, 0) > 0  # some definitions were written
