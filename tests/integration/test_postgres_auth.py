"""The embedded Postgres asks for a password: generated, kept 0600, required on every path."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from tenure.runtime import postgres
from tenure.runtime.postgres import EmbeddedPostgres


@pytest.fixture(autouse=True)
def _no_ambient_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """libpq must not find a password anywhere but in the URL."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


def _refused(server: EmbeddedPostgres) -> None:
    """Without the password (TCP or Unix socket) or with a wrong one, no connection."""
    port = server.port
    for url in (
        f"postgresql://postgres@127.0.0.1:{port}/postgres",
        f"postgresql://postgres:wrong@127.0.0.1:{port}/postgres",
    ):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(url, connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=str(server.socket_dir), port=port, user="postgres", dbname="postgres")


def _private(path: Path) -> None:
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert info.st_uid == os.geteuid()


def test_password_file_is_private_and_the_password_is_required(
    postgres_server: EmbeddedPostgres,
) -> None:
    _private(postgres_server.password_file)
    assert len(postgres_server.password) >= 32
    _refused(postgres_server)
    with psycopg.connect(postgres_server.url_for("postgres"), connect_timeout=5) as conn:
        assert conn.execute("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid").fetchone()
    assert not (postgres_server.root / "initdb.pw").exists()


def test_a_data_dir_made_with_trust_auth_gets_a_password(scratch_dir: Path) -> None:
    root = scratch_dir / "pg-trust"
    root.mkdir()
    user = postgres._server_user()
    if user:
        postgres._chown_tree(root, user)
    made = subprocess.run(  # what Tenure did before it set a password
        [
            str(postgres._bin_dir() / "initdb"),
            *("-D", str(root / "data"), "--auth=trust", "-U", "postgres", "--no-instructions"),
        ],
        capture_output=True,
        text=True,
        user=user,
    )
    assert made.returncode == 0, made.stderr
    server = EmbeddedPostgres(root)
    server.start()
    try:
        _private(server.password_file)
        assert "trust" not in [
            line.split()[-1]
            for line in (server.data_dir / "pg_hba.conf").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        _refused(server)
        with psycopg.connect(server.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    server.start()  # and it starts again as a password-protected server
    try:
        _refused(server)
        with psycopg.connect(server.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
